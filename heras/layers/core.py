"""Core layers: Dense, Flatten, Reshape, Dropout, Activation."""

import math

import keras

import primitives as P
from .. import activations as activation_lookup
from .base import EncryptableLayer, LinearWithActivation, default_kernel_initializer


@keras.saving.register_keras_serializable(package="heras")
class Dense(LinearWithActivation, keras.layers.Dense):
    """Fully connected layer: ``activation(x @ kernel + bias)``, plain or encrypted.

    Same arguments as ``keras.layers.Dense``; ``activation`` may be "square" or "poly" (or
    any Keras activation for plaintext-only models). On CKKS the product uses one level.
    The default ``kernel_initializer`` is heras' :func:`~heras.layers.base.default_kernel_initializer`
    (variance 0.3 / fan_in, suited to square activations) instead of Keras' Glorot uniform.
    """

    def __init__(self, units, activation=None, **kwargs):
        kwargs.setdefault("kernel_initializer", default_kernel_initializer())
        super().__init__(units, activation=None, **kwargs)
        self.heras_activation = activation_lookup.get(activation)

    def linear(self, inputs, kernel, bias, output_features=None):
        return P.matmul(inputs, kernel, bias, output_features=output_features)

    def activations(self, input_shape):
        return self.output_activations(math.prod(input_shape[1:-1]) * self.units)

    def __repr__(self):
        return f"<heras Dense {self.units} units, activation={activation_lookup.serialize(self.heras_activation)}>"


@keras.saving.register_keras_serializable(package="heras")
class Flatten(EncryptableLayer, keras.layers.Flatten):
    """Flatten the per-sample features (free on ciphertexts)."""

    def call(self, inputs):
        return P.flatten(inputs)


@keras.saving.register_keras_serializable(package="heras")
class Reshape(EncryptableLayer, keras.layers.Reshape):
    """Reshape the per-sample features to ``target_shape`` (free on ciphertexts)."""

    def call(self, inputs):
        return P.reshape(inputs, self.target_shape)


@keras.saving.register_keras_serializable(package="heras")
class Dropout(EncryptableLayer, keras.layers.Dropout):
    """Dropout in training; the identity at inference, plain or encrypted."""

    elementwise = True

    def call(self, inputs, training=False):
        if P.is_encrypted(inputs) or not training:
            return inputs
        return super().call(inputs, training=training)


@keras.saving.register_keras_serializable(package="heras")
class Activation(EncryptableLayer, keras.layers.Layer):
    """An activation as a layer: "square", "poly" or "linear" (others train but cannot encrypt)."""

    elementwise = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.heras_activation = activation_lookup.get(activation)

    def call(self, inputs):
        return self.heras_activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def activations(self, input_shape):
        from .base import feature_count
        return feature_count(input_shape) * activation_lookup.multiplications(self.heras_activation)

    @property
    def bfv_depth(self):
        return activation_lookup.bfv_depth(self.heras_activation)

    @property
    def ckks_depth(self):
        return activation_lookup.ckks_depth(self.heras_activation)

    def get_config(self):
        return {**super().get_config(), "activation": activation_lookup.serialize(self.heras_activation)}
