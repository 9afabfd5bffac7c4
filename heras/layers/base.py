"""`EncryptableLayer`: what every heras layer adds to a Keras layer to run on ciphertexts.

A heras layer's ``call`` uses only ``primitives`` ops, so the same code trains on TensorFlow
tensors and infers on `EncryptedTensor`s. Encrypted inference calls ``call`` directly (Keras'
``__call__`` would try to convert a ciphertext into a tensor). Weights used on ciphertexts
come from ``encryption_weights``: the trained float weights by default, replaced by their
integer versions once a model is prepared for BFV.
"""

import math

import keras
import numpy as np

import primitives as P

DEFAULT_INIT_SCALE = 0.3


def default_kernel_initializer():
    """heras' default for Dense and Conv2D kernels: a truncated normal of variance 0.3 / fan_in.

    A square doubles the magnitude of what it receives; kernels ~3x smaller than LeCun's
    (~6x smaller than Glorot's for a 784 -> 30 layer) start the squares small, so training does
    not blow up early (see :mod:`heras.models.training`).
    """
    return keras.initializers.VarianceScaling(DEFAULT_INIT_SCALE, mode="fan_in", distribution="truncated_normal")


class EncryptableLayer:
    """Mixin for keras layers with an encrypted form; see the module docstring.

    Optional hooks a layer may define (extension points for applications): ``encryption_gates()``
    (per-position multipliers folded away by preparation, see :class:`heras.layers.PositionGate`)
    and ``training_callbacks()`` (Keras callbacks heras' ``fit`` adds, e.g. a penalty schedule).
    """

    #: Ciphertext-ciphertext multiplications the layer adds to a path (BFV depth).
    bfv_depth = 0
    #: Rescaling multiplications the layer adds to a path (CKKS depth).
    ckks_depth = 0
    #: On ciphertexts the layer acts feature by feature, the same function on every feature
    #: (squares, polynomials, the identity): it commutes with taking any subset of features,
    #: which lets a model stream a layer's outputs block by block (heras.models.streaming).
    elementwise = False

    def activations(self, input_shape):
        """Ciphertext-ciphertext multiplications per sample (SEALion's cost measure)."""
        return 0

    def encryption_cost(self, input_shape):
        """Cost of this layer on encrypted inputs of ``input_shape`` (batch axis included)."""
        return {"activations": self.activations(input_shape), "bfv_depth": self.bfv_depth,
                "ckks_depth": self.ckks_depth}

    def set_encryption_weights(self, **weights):
        """Use these numpy arrays instead of the trained weights on ciphertexts (e.g. integers)."""
        known = {w.path.split("/")[-1] for w in self.weights}
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ValueError(f"{self.name} has no weights named {unknown}; it has {sorted(known)}.")
        self._encryption_weights = {name: np.asarray(value) for name, value in weights.items()}

    def weight_for(self, name, x):
        """The weight called ``name`` in the form ``x`` needs.

        TensorFlow inputs (training, Keras predict) get the trained variable (passed through
        ``self.training_weight_transform(name, variable)`` when set: quantisation-aware
        fine-tuning rounds it there, see :mod:`heras.models.fine_tuning`); ciphertexts, numpy
        arrays and bounds get the prepared (e.g. integer) weights when set, else the variable's
        values as numpy.
        """
        variable = getattr(self, name)
        if variable is None or is_framework(x):
            transform = getattr(self, "training_weight_transform", None)  # e.g. fine_tuning's rounding
            return variable if variable is None or transform is None else transform(name, variable)
        override = getattr(self, "_encryption_weights", {}).get(name)
        return override if override is not None else np.asarray(variable)


class LinearWithActivation(EncryptableLayer):
    """Mixin for Dense and Conv2D: a plaintext-weight product followed by an optional activation
    (``self.heras_activation``); one CKKS level for the product plus the activation's cost.

    Subclasses define ``linear(inputs, kernel, bias)``, the product alone; the kernel's last
    axis indexes output channels (Dense units, Conv2D filters)."""

    def call(self, inputs):
        return self.call_channels(inputs, 0, None)

    def call_channels(self, inputs, start, stop):
        """``call`` restricted to output channels [start, stop): the same values as
        ``call(inputs)[..., start:stop]``, computed without the other channels."""
        kernel, bias = self.weight_for("kernel", inputs), self.weight_for("bias", inputs)
        if start != 0 or stop is not None:
            kernel = kernel[..., start:stop]
            bias = None if bias is None else bias[start:stop]
        return self.heras_activation(self.linear(inputs, kernel, bias))

    def call_subset(self, inputs, input_positions=None, output_features=None):
        """``call`` on a compact input, computing only some outputs (pruned models).

        Args:
            input_positions: the flat indices of the logical input's features that ``inputs``
                holds (a flat tensor), or None when ``inputs`` is whole; Dense on flat inputs only.
            output_features: flat indices of the outputs to compute (a flat result of that
                many features), or None for all of them.
        """
        kernel, bias = self.weight_for("kernel", inputs), self.weight_for("bias", inputs)
        if input_positions is not None:
            if np.ndim(kernel) != 2:
                raise ValueError(f"{self.name}: only a Dense on flat inputs reads a compact input.")
            kernel = np.asarray(kernel)[np.asarray(input_positions)]
        return self.heras_activation(self.linear(inputs, kernel, bias, output_features=output_features))

    @property
    def bfv_depth(self):
        return self.heras_activation.depth()

    @property
    def ckks_depth(self):
        return 1 + self.heras_activation.ckks_depth()

    def output_activations(self, output_features):
        return output_features * self.heras_activation.multiplications()

    def get_config(self):
        return {**super().get_config(), "activation": self.heras_activation.serialize()}


def is_framework(x):
    """True for TensorFlow/Keras tensors: the training path."""
    return P.ops.is_framework_tensor(x)


def feature_count(input_shape):
    """Features per sample of a (batch, ...) shape."""
    return int(math.prod(d for d in input_shape[1:]))
