"""Conv2D: channels-last 2-D convolution with plain kernels, plain or encrypted."""

import keras
import numpy as np

import primitives as P
from .. import activations as activation_lookup
from .base import LinearWithActivation, default_kernel_initializer


@keras.saving.register_keras_serializable(package="heras")
class Conv2D(LinearWithActivation, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (channels last, no dilation or groups) that also runs on ciphertexts.

    The default ``kernel_initializer`` is heras' :func:`~heras.layers.base.default_kernel_initializer`
    (variance 0.3 / fan_in, suited to square activations) instead of Keras' Glorot uniform.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, **kwargs):
        for unsupported in ("dilation_rate", "groups"):
            if any(v != 1 for v in np.atleast_1d(kwargs.get(unsupported, 1))):
                raise ValueError(f"heras Conv2D does not support `{unsupported}` other than 1 yet. "
                                 f"Received: {unsupported}={kwargs[unsupported]!r}")
        if kwargs.get("data_format", "channels_last") != "channels_last":
            raise ValueError("heras Conv2D expects data_format='channels_last'.")
        kwargs.setdefault("kernel_initializer", default_kernel_initializer())
        super().__init__(filters, kernel_size, strides=strides, padding=padding, activation=None, **kwargs)
        self.heras_activation = activation_lookup.get(activation)

    def linear(self, inputs, kernel, bias, output_features=None):
        return P.conv2d(inputs, kernel, bias, strides=self.strides, padding=self.padding,
                        output_features=output_features)

    def call_rows(self, inputs, start, stop):
        """``call`` restricted to output rows [start, stop): the same values as
        ``call(inputs)[:, start:stop]``, computed from the input rows those windows read."""
        kernel, bias = self.weight_for("kernel", inputs), self.weight_for("bias", inputs)
        return self.heras_activation(P.conv2d(inputs, kernel, bias, strides=self.strides, padding=self.padding,
                                              output_rows=(start, stop)))

    def activations(self, input_shape):
        out = self.compute_output_shape(input_shape)
        return self.output_activations(int(out[1] * out[2] * out[3]))

    def __repr__(self):
        return f"<heras Conv2D {self.filters} filters {self.kernel_size}, strides {self.strides}, {self.padding}>"
