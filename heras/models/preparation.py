"""Prepare a trained model for encrypted inference: discretise for BFV, plan levels for CKKS.

BFV computes on integers, so every layer's weights become integers at a chosen scale:
inputs x -> round(x * input_scale); a linear layer with weights W -> round(W * s_w) where s_w
maps max|W| to 2^(weight_bits-1) - 1, its bias -> round(b * scale_in * s_w); a square squares
the running scale; a degree-d polynomial (Poly, activation "poly") on inputs at scale s gets
integer coefficients round(c_k * q * s^(d-k)) and output scale q * s^d (q maps max|c_k| to
2^(weight_bits-1) - 1); sum pooling keeps the scale; average pooling becomes sum pooling
(scale times the window area). The integer model is the exact oracle: BFV decrypts to its outputs bit for bit.
Running the layers on a :class:`~primitives.BoundTensor` proves the largest |value| of every
intermediate, which sizes the CRT plaintext modulus.

Position gates (:class:`heras.layers.PositionGate`, e.g. an L0 sparsifier) are folded into a
neighbouring linear layer first (:mod:`heras.models.gates`); features whose gate is 0 are then
never computed (:mod:`heras.models.pruning`).

CKKS keeps real weights; the plan counts rescaling levels and proves a bound on every value
(integer bits) and on the error of every output before selecting parameters. Each CKKS op that
creates noise (encryption, rescaling, relinearisation) adds a small error d, and the network
amplifies it: a linear layer by its rows' l1-norms, a square x^2 by 2|x|, a polynomial by its
derivative. Running the layers on a BoundTensor with a
:class:`~primitives.bound_tensor.CKKSErrorModel` bounds the output error by A * d; the scale
then gets a = ceil(log2 A) bits on top of the precision and the selection's guard bits
(scale 2^s = 2^(precision + a + guard), d <= 2^-(precision + a), trial-checked), so the output
error is proven below 2^-precision_bits for every input within the calibrated range.
"""

import functools
import math
from dataclasses import dataclass, field

import keras
import numpy as np

import primitives as P
import primitives.bound_tensor  # noqa: F401  (CKKSErrorModel)
from primitives import selection
from .. import activations as heras_activations
from ..layers.base import EncryptableLayer
from .costs import check_encryptable
from .gates import fold_gates, trained_weights

SCHEMES = ("bfv", "ckks")


def quantize_inputs(x, scheme, input_scale, input_bound):
    """Inputs as the encrypted model reads them, clipped to the range its bounds were proven for.

    BFV: the integers round(x * input_scale), saturated at +-input_bound. CKKS: the reals
    themselves, clipped at +-input_bound. Shared by the plan and the client
    (:class:`heras.deployment.ClientSpec`), which quantise identically.
    """
    x = np.asarray(x, dtype=np.float64)
    if scheme == "ckks":
        return np.clip(x, -input_bound, input_bound)
    return np.clip(np.rint(x * input_scale), -input_bound, input_bound).astype(np.int64)


@dataclass
class EncryptionPlan:
    """What a prepared model needs to run encrypted, and the parameters chosen for it."""

    scheme: str
    parameters: P.Parameters
    input_scale: float
    input_bound: float
    output_scale: float
    depth: int
    max_value: float
    layer_scales: list = field(default_factory=list)
    linear_l1: int = 1  # BFV: largest l1-norm of an integer weight row
    precision_bits: int | None = None     # CKKS: asked for
    amplification: float | None = None    # CKKS: output error <= amplification * per-op error
    error_bound: float | None = None      # CKKS: proven bound on |decrypted - float model|

    def quantize(self, x):
        """BFV: inputs as the integers the encrypted model expects; CKKS: inputs unchanged."""
        return quantize_inputs(x, self.scheme, self.input_scale, self.input_bound)

    def __str__(self):
        head = (f"{self.scheme.upper()} plan: depth {self.depth}, proven max |value| "
                f"{self.max_value:.4g} (~2^{math.log2(max(self.max_value, 1)):.1f})")
        if self.scheme == "bfv":
            head += f", input scale {self.input_scale:g}, output scale {self.output_scale:.4g}"
        elif self.error_bound is not None:
            p, a = self.parameters, self.parameters.amplification_bits
            head += (f"\nCKKS error: proven |error| <= 2^{math.log2(max(self.error_bound, 1e-300)):.1f} < "
                     f"2^-{self.precision_bits}: each op adds <= 2^-{self.precision_bits + a}, the layers "
                     f"amplify it by <= 2^{math.log2(self.amplification):.1f} (scale 2^{p.scale_bits} = "
                     f"precision {self.precision_bits} + amplification {a} + guard "
                     f"{p.scale_bits - self.precision_bits - a} bits)")
        return head + "\n" + str(self.parameters)


def prepare(model, scheme, security=128, calibration=None, input_bits=8, weight_bits=8,
            precision_bits=20, batch_size=None):
    """Build the :class:`EncryptionPlan` of ``model``; see the module docstring."""
    if scheme not in SCHEMES:
        raise ValueError(f"Expected `scheme` to be one of {list(SCHEMES)}. Received: scheme={scheme!r}")
    if not model.built or not model.inputs:
        raise RuntimeError("The model has no weights yet: build and fit it (model.fit(...)) before "
                           "prepare_encryption.")
    check_encryptable(model.layers)
    fold_gates(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotImplementedError(f"prepare_encryption handles models with one input and one output; "
                                  f"this one has {len(model.inputs)} and {len(model.outputs)}.")
    input_shape = tuple(model.inputs[0].shape[1:])
    input_max, signed = _input_range(calibration)
    if scheme == "bfv":
        return _prepare_bfv(model, input_shape, input_max, signed, security, input_bits, weight_bits, batch_size)
    return _prepare_ckks(model, input_shape, input_max, security, precision_bits, batch_size)


def _input_range(calibration):
    if calibration is None:
        return 1.0, False
    data = np.asarray(calibration, dtype=np.float64)
    if data.size == 0 or not np.all(np.isfinite(data)):
        raise ValueError("Expected `calibration` to be a non-empty array of finite inputs.")
    return max(float(np.max(np.abs(data))), 1e-12), bool(np.min(data) < 0)


def walk(model, x, fn):
    """Run ``fn(layer, inputs)`` through ``model`` and return its output: layer after layer for a
    Sequential model, node by node through a functional model's graph (a merging layer such as
    Add receives the list of its inputs). Values travel as they are: arrays, BoundTensors,
    EncryptedTensors, or any object standing for a tensor."""
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = fn(layer, x)
        return x
    return model._run_through_graph(x, operation_fn=lambda layer: functools.partial(fn, layer))


@dataclass
class _Flow:
    """What BFV discretisation carries along a tensor: its scale, and the plain factors applied
    since the last linear layer (a polynomial's coefficient, an Add's power of two)."""

    scale: float
    pending: int = 1


def _prepare_bfv(model, input_shape, input_max, signed, security, input_bits, weight_bits, batch_size):
    """Discretise every layer, prove the bound, select parameters. A functional model gets
    power-of-two scales (input, weights, polynomial coefficients), so that an Add can bring its
    inputs to one scale by exact integer factors."""
    power_of_two = not isinstance(model, keras.Sequential)
    levels = 2 ** (input_bits - 1) - 1 if signed else 2 ** input_bits - 1
    input_scale = levels / input_max
    if power_of_two:
        input_scale = _power_of_two_below(input_scale)
    totals, scales = {"linear_l1": 1, "noise_l1": 1}, {}

    def step(layer, flow, **kwargs):
        if isinstance(flow, list):
            out = _match_scales(layer, flow)
        else:
            result = _discretise(layer, flow.scale, weight_bits, _following(model, layer), power_of_two)
            pending = flow.pending
            if result.l1 is not None:  # a Dense/Conv2D: its rows multiply whatever factor came before
                totals["linear_l1"] = max(totals["linear_l1"], result.l1)
                totals["noise_l1"], pending = max(totals["noise_l1"], result.l1 * pending), 1
            out = _Flow(result.scale, pending * result.factor)
        scales[id(layer)] = out.scale
        return out

    output = walk(model, _Flow(input_scale), step)
    noise_l1 = max(totals["noise_l1"], output.pending)
    layer_scales = [scales.get(id(layer), input_scale) for layer in model.layers]
    max_value, depth = _prove_bound(model, input_shape, levels), path_depth(model, "bfv")
    params = P.select_parameters("bfv", security=security, depth=depth, max_value=max(int(max_value), 1),
                                 linear_bits=math.log2(noise_l1), batch_size=batch_size)
    return EncryptionPlan("bfv", params, input_scale, levels, output.scale, depth, max_value, layer_scales,
                          totals["linear_l1"])


def _power_of_two_below(value):
    return 2.0 ** math.floor(math.log2(value))


def _following(model, layer):
    """The layer that consumes ``layer``'s output, when there is exactly one (for BN folding)."""
    if isinstance(model, keras.Sequential):
        index = model.layers.index(layer)
        return model.layers[index + 1] if index + 1 < len(model.layers) else None
    consumers = [node.operation for node in getattr(layer, "_outbound_nodes", [])
                 if node.operation in model.layers]
    return consumers[0] if len(consumers) == 1 else None


def _match_scales(layer, flows):
    """BFV Add: multiply each input by the integer bringing it to the largest scale."""
    name = layer.__class__.__name__
    if name != "Add":
        raise NotImplementedError(f"BFV discretisation does not support {name} ({layer.name}) yet; "
                                  "merge branches with Add, or use CKKS.")
    target = max(flow.scale for flow in flows)
    factors = []
    for flow in flows:
        ratio = target / flow.scale
        if not ratio.is_integer() or ratio >= 2.0 ** 62:
            raise NotImplementedError(
                f"BFV cannot add the inputs of {layer.name}: they arrive at scales "
                f"{', '.join(f'{f.scale:.6g}' for f in flows)}, whose ratios are not exact integers, so "
                "no integer factor brings them to one scale. Use pooling windows whose area is a power "
                "of two on the branches, or prepare_encryption('ckks').")
        factors.append(int(ratio))
    layer.input_factors = factors if any(f != 1 for f in factors) else None
    return _Flow(target, max(flow.pending * factor for flow, factor in zip(flows, factors)))


@dataclass
class _Step:
    """A layer's discretisation: the scale after it, the largest l1-norm of an integer weight
    row (Dense/Conv2D; else None), and the largest plain factor a polynomial multiplies its
    deepest power by (it adds to the next linear layer's noise)."""

    scale: float
    l1: int | None = None
    factor: int = 1


def _discretise(layer, scale, weight_bits, following=None, power_of_two=False):
    """Set integer weights on ``layer``; return its :class:`_Step` (``power_of_two``: weight and
    coefficient scales rounded down to powers of two).

    A BatchNormalization right after a Dense/Conv2D without activation is folded into it:
    kernel * gamma/sigma per output channel, bias * gamma/sigma + shift.
    """
    name = layer.__class__.__name__
    activation = getattr(layer, "heras_activation", None)
    if getattr(layer, "gates_folded", False):
        return _Step(scale)  # a position gate, folded into a linear layer: the identity
    if name in ("Dense", "Conv2D"):
        kernel, bias = trained_weights(layer)  # folded gates included
        if following is not None and following.__class__.__name__ == "BatchNormalization":
            if activation is not None and activation.name != "linear":
                raise NotImplementedError(f"Cannot fold {following.name} into {layer.name}: the activation "
                                          "sits between them. Put BatchNormalization before the activation.")
            bn_scale, bn_shift = following.affine()
            kernel, bias = kernel * bn_scale, bias * bn_scale + bn_shift
            following.folded = True
        weight_scale = (2 ** (weight_bits - 1) - 1) / max(float(np.max(np.abs(kernel))), 1e-12)
        if power_of_two:
            weight_scale = _power_of_two_below(weight_scale)
        integer_kernel = np.rint(kernel * weight_scale).astype(np.int64)
        weights = {"kernel": integer_kernel}
        if layer.use_bias or getattr(following, "folded", False):
            if not layer.use_bias:
                raise NotImplementedError(f"Folding {following.name} needs a bias in {layer.name}: "
                                          "build it with use_bias=True.")
            weights["bias"] = _integers(bias * scale * weight_scale)
        layer.set_encryption_weights(**weights)
        l1 = int(np.abs(integer_kernel).reshape(-1, integer_kernel.shape[-1]).sum(axis=0).max())
        step = _discretise_activation(layer, activation, scale * weight_scale, weight_bits, power_of_two)
        return _Step(step.scale, l1, step.factor)
    if name in ("Square", "Activation"):
        return _discretise_activation(layer, activation if name == "Activation" else heras_activations.get("square"),
                                      scale, weight_bits, power_of_two)
    if name == "Poly":
        integers, out_scale, factor = poly_integers(np.asarray(layer.coefficients), scale, weight_bits,
                                                    power_of_two)
        layer.set_encryption_weights(coefficients=integers)
        return _Step(out_scale, None, factor)
    if name == "AveragePooling2D":
        layer.as_sum_pooling = True  # BFV cannot divide: sum, and carry the area in the scale
        return _Step(scale * layer.pool_size[0] * layer.pool_size[1])
    if name in ("Flatten", "Reshape", "Dropout", "SumPooling2D"):
        return _Step(scale)
    if name == "BatchNormalization" and getattr(layer, "folded", False):
        return _Step(scale)
    raise NotImplementedError(f"BFV discretisation does not support {name} ({layer.name}) yet; use "
                              "Dense, Conv2D, Square, Poly, pooling, Flatten, Reshape and Dropout, or CKKS.")


def _discretise_activation(layer, activation, scale, weight_bits, power_of_two=False):
    """The scale after an activation (square: s^2; poly: integer coefficients, see poly_integers)."""
    if activation is None or activation.name == "linear":
        return _Step(scale)
    if activation.name == "square":
        return _Step(scale * scale)
    if activation.name == "poly":
        integers, out_scale, factor = poly_integers(activation.coefficients, scale, weight_bits, power_of_two)
        activation.integer_coefficients = integers.tolist()
        return _Step(out_scale, None, factor)
    raise NotImplementedError(f"BFV discretisation supports square and poly activations; {layer.name} "
                              f"uses {activation.name!r}, which has no encrypted form.")


def poly_integers(coefficients, scale, weight_bits, power_of_two=False):
    """A polynomial on integers: inputs x = round(x_real * s), output at scale S = q * s^d.

    S * sum_k c_k x_real^k = sum_k (c_k * q * s^(d - k)) x^k, so the integer coefficients are
    round(c_k * q * s^(d - k)), with q mapping the largest |c_k| to 2^(weight_bits - 1) - 1
    (the precision of a weight; lower powers carry s^(d - k) more). Returns (integer
    coefficients, S, the largest |coefficient| of a deepest power: its noise factor).
    """
    c = np.asarray(coefficients, dtype=np.float64)
    degree = len(c) - 1
    q = (2 ** (weight_bits - 1) - 1) / max(float(np.max(np.abs(c))), 1e-12)
    if power_of_two:
        q = _power_of_two_below(q)
    integers = _integers(np.array([c[k] * q * float(scale) ** (degree - k) for k in range(degree + 1)]))
    deepest = heras_activations.polynomial_depth(degree)
    factor = max([abs(int(integers[k])) for k in range(1, degree + 1)
                  if heras_activations.power_depth(k) == deepest] + [1])
    return integers, q * float(scale) ** degree, factor


def _integers(values):
    """Round to exact integers: int64 when they fit, Python ints beyond (deep models' biases)."""
    rounded = np.rint(values)
    if np.all(np.abs(rounded) < 2.0 ** 62):
        return rounded.astype(np.int64)
    return np.array([int(v) for v in rounded.ravel()], dtype=object).reshape(rounded.shape)


def _prove_bound(model, input_shape, input_bound):
    """Largest |value| of any intermediate, proven by running the layers on bounds."""
    worst = [input_bound]

    def step(layer, *args, **kwargs):
        out = layer.call(*args, **kwargs)
        worst.append(out.max)
        return out
    walk(model, P.BoundTensor(input_bound, shape=input_shape), step)
    return max(worst)


def path_depths(model, scheme):
    """Depth (ciphertext products for "bfv", rescalings for "ckks") at each layer's output, by
    layer id, along the longest path. A CKKS Add whose deepest inputs arrive at the same level
    may spend one more to match their scales."""
    kind = f"{scheme}_depth"
    depths = {}

    def step(layer, inputs, **kwargs):
        if isinstance(inputs, list):
            deepest = max(inputs)
            depth = deepest + (1 if scheme == "ckks" and inputs.count(deepest) > 1 else 0)
        else:
            depth = inputs + (getattr(layer, kind) if isinstance(layer, EncryptableLayer) else 0)
        depths[id(layer)] = depth
        return depth
    output = walk(model, 0, step)
    return depths, output


def path_depth(model, scheme):
    """Depth of the whole model (the longest path), see :func:`path_depths`."""
    return path_depths(model, scheme)[1]


def _prepare_ckks(model, input_shape, input_max, security, precision_bits, batch_size):
    for layer in model.layers:
        if getattr(layer, "as_sum_pooling", False):
            layer.as_sum_pooling = False
        if getattr(layer, "folded", False):
            layer.folded = False
        if hasattr(layer, "_encryption_weights"):
            del layer._encryption_weights  # CKKS runs the trained real weights
        if getattr(getattr(layer, "heras_activation", None), "integer_coefficients", None) is not None:
            layer.heras_activation.integer_coefficients = None
        if getattr(layer, "input_factors", None):
            layer.input_factors = None  # CKKS matches an Add's scales itself
        if getattr(layer, "_folded_weights", None) is not None:  # real weights with gates folded in
            kernel, bias = trained_weights(layer)
            layer.set_encryption_weights(**({"kernel": kernel, "bias": bias} if layer.use_bias else {"kernel": kernel}))
    max_value, depth = float(_prove_bound(model, input_shape, input_max)), path_depth(model, "ckks")
    integer_bits = max(1, math.ceil(math.log2(max(max_value, 1.0))) + 1)
    amplification = ckks_amplification(model, input_shape, input_max)
    bits = max(0, math.ceil(math.log2(amplification)))
    for _ in range(8):  # the quadratic and encoding terms rarely need one more bit
        params = P.select_parameters("ckks", security=security, depth=depth, precision_bits=precision_bits,
                                     integer_bits=integer_bits, batch_size=batch_size, amplification_bits=bits)
        error = ckks_error_bound(model, input_shape, input_max, 2.0 ** -(precision_bits + bits),
                                 2.0 ** -params.scale_bits)
        if error <= 2.0 ** -precision_bits:
            break
        bits += 1
    else:
        raise P.ParameterError(f"CKKS: could not bring the proven output error ({error:.3g}) below "
                               f"2^-{precision_bits}; lower precision_bits.")
    return EncryptionPlan("ckks", params, 1.0, input_max, 1.0, depth, max_value, precision_bits=precision_bits,
                          amplification=amplification, error_bound=error)


def ckks_error_bound(model, input_shape, input_max, op_error, encoding_error):
    """Proven bound on |CKKS output - float output| when each op adds <= ``op_error`` and plain
    factors are encoded within ``encoding_error`` (see :mod:`primitives.backends.bounds`)."""
    error_model = P.bound_tensor.CKKSErrorModel(op_error, encoding_error)
    x = P.BoundTensor(input_max, shape=input_shape, error_model=error_model)
    return walk(model, x, lambda layer, *args, **kwargs: layer.call(*args, **kwargs)).max_error


def ckks_amplification(model, input_shape, input_max):
    """A with output error <= A * (per-op error), to first order: encodings count 2^-guard of an
    op (a plain factor is encoded at the s-bit scale, an op adds 2^-(s - guard))."""
    unit = 2.0 ** -200  # small enough that products of errors vanish
    return ckks_error_bound(model, input_shape, input_max, unit, unit * 2.0 ** -selection.CKKS_GUARD_BITS) / unit
