"""Fold position gates into linear layers: the first step of ``prepare_encryption``.

A layer with an ``encryption_gates()`` method (:class:`heras.layers.PositionGate`) multiplies
each feature position by a fixed z. On ciphertexts that product would cost a plaintext
multiplication per position and, worse, keep the positions whose z is 0 alive. So before
discretisation (BFV) or error planning (CKKS) every gate's multipliers are moved into a linear
layer and the gate becomes the identity (``gates_folded``):

- **forward**, into the next Dense (on flat inputs) reached through Flatten, Reshape and
  homogeneous element-wise layers: a Square turns z into z^2 (the square of z x is z^2 x^2),
  Dropout, a linear Activation and other gates keep z. The Dense's kernel rows are multiplied
  by z^power: rows of switched-off positions become 0.
- **backward**, into the Dense or Conv2D right before the gate (without activation), when z is
  the same at every spatial position (per channel or per unit): kernel columns and bias times z.

The folded float weights are kept beside the trained variables (``layer._folded_weights``);
BFV discretises them, CKKS runs them. Rows of zeros then tell :mod:`heras.models.pruning`
which positions need no computation at all. Functional models do not fold gates yet.
"""

import keras
import numpy as np

from ..layers.base import LinearWithActivation
from ..layers.core import Dense, Dropout, Flatten, Reshape


def trained_weights(layer):
    """(kernel, bias) of a Dense/Conv2D as float64, with folded gates; bias zeros if unused."""
    folded = getattr(layer, "_folded_weights", None)
    if folded is not None:
        return folded["kernel"], folded["bias"]
    kernel = np.asarray(layer.kernel, dtype=np.float64)
    bias = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    return kernel, bias


def has_gates(layer):
    return callable(getattr(layer, "encryption_gates", None))


def fold_gates(model):
    """Fold every gate of ``model`` (see the module docstring); returns the gates folded."""
    for layer in model.layers:
        if hasattr(layer, "_folded_weights"):
            del layer._folded_weights
        if has_gates(layer):
            layer.gates_folded = False
    gated = [i for i, layer in enumerate(model.layers) if has_gates(layer)]
    if not gated:
        return []
    if not isinstance(model, keras.Sequential):
        raise NotImplementedError("Position gates fold in Sequential models only; build the model with "
                                  "heras.models.Sequential.")
    layers, shapes = model.layers, input_shapes(model)
    for i in gated:
        gate = layers[i]
        z = np.broadcast_to(gate.encryption_gates(), shapes[i]).astype(np.float64)
        if not np.all(np.isfinite(z)) or np.any(z < 0):
            raise ValueError(f"{gate.name}: gate multipliers must be finite and >= 0.")
        target = _forward_target(layers, shapes, i)
        if target is not None:
            j, power = target
            kernel, bias = trained_weights(layers[j])
            layers[j]._folded_weights = {"kernel": kernel * (z.reshape(-1) ** power)[:, None], "bias": bias}
        elif _can_fold_backward(layers, i, z):
            kernel, bias = trained_weights(layers[i - 1])
            per_channel = z.reshape(-1, z.shape[-1])[0]
            layers[i - 1]._folded_weights = {"kernel": kernel * per_channel, "bias": bias * per_channel}
        else:
            raise NotImplementedError(
                f"{gate.name}: cannot fold its multipliers into a linear layer. Put the gate before a Square "
                "(or after it) that leads, through Flatten, to a Dense layer; or use gates that are the same "
                "at every spatial position right after a Dense/Conv2D without activation.")
        gate.gates_folded = True
    return [layers[i] for i in gated]


def input_shapes(model):
    """Per-sample input shape of every layer of a Sequential model."""
    shape, shapes = tuple(model.inputs[0].shape), []
    for layer in model.layers:
        shapes.append(tuple(shape[1:]))
        shape = tuple(layer.compute_output_shape(shape))
    return shapes


def _degree(layer):
    """How a layer scales with a factor on its input (z x -> z^degree f(x)), or None."""
    if isinstance(layer, (Flatten, Reshape, Dropout)) or has_gates(layer):
        return 1
    if layer.__class__.__name__ == "Square":
        return 2
    activation = getattr(layer, "heras_activation", None)
    if layer.__class__.__name__ == "Activation" and activation is not None:
        return {"linear": 1, "square": 2}.get(activation.name)
    return None


def _forward_target(layers, shapes, i):
    power = 1
    for j in range(i + 1, len(layers)):
        if isinstance(layers[j], Dense):
            return (j, power) if len(shapes[j]) == 1 else None
        degree = _degree(layers[j])
        if degree is None:
            return None
        power *= degree
    return None


def _can_fold_backward(layers, i, z):
    if i == 0 or not isinstance(layers[i - 1], LinearWithActivation):
        return False
    activation = layers[i - 1].heras_activation
    if activation is not None and activation.name != "linear":
        return False
    rows = z.reshape(-1, z.shape[-1])
    return bool(np.all(rows == rows[0]))
