"""Polynomial activation layers: Square and Poly (fixed or trainable coefficients)."""

import keras
import numpy as np

import primitives as P
from ..activations import DEFAULT_POLY, polynomial_depth
from .base import EncryptableLayer, feature_count, is_framework


@keras.saving.register_keras_serializable(package="heras")
class Square(EncryptableLayer, keras.layers.Layer):
    """x -> x^2: the CryptoNets activation, one ciphertext multiplication per feature."""

    bfv_depth = 1
    ckks_depth = 1
    elementwise = True

    def call(self, inputs):
        return P.square(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def activations(self, input_shape):
        return feature_count(input_shape)

    def __repr__(self):
        return "<heras Square>"


@keras.saving.register_keras_serializable(package="heras")
class Poly(EncryptableLayer, keras.layers.Layer):
    """x -> sum_k c_k x^k, with coefficients fixed or learnt.

    On BFV the prepared model runs integer coefficients (``prepare_encryption("bfv")``: on
    integers x at scale s, sum_k round(c_k * q * s^(d - k)) x^k is the output at scale q * s^d,
    with q mapping the largest |c_k| to the weight precision).

    Args:
        coefficients: c_0, c_1, ..., c_d (default 0.25 + 0.5 x + 0.125 x^2).
        trainable_coefficients: learn the coefficients with the rest of the model.
    """

    elementwise = True

    def __init__(self, coefficients=DEFAULT_POLY, trainable_coefficients=False, **kwargs):
        super().__init__(**kwargs)
        if len(coefficients) < 2:
            raise ValueError(f"Expected `coefficients` to hold at least 2 values. Received: {list(coefficients)}")
        self.initial_coefficients = [float(c) for c in coefficients]
        self.trainable_coefficients = bool(trainable_coefficients)

    def build(self, input_shape):
        self.coefficients = self.add_weight(
            name="coefficients", shape=(len(self.initial_coefficients),),
            initializer=keras.initializers.Constant(self.initial_coefficients),
            trainable=self.trainable_coefficients)

    def call(self, inputs):
        coefficients = self.weight_for("coefficients", inputs)
        if not is_framework(inputs):
            return P.polynomial(inputs, np.asarray(coefficients).tolist())
        result = keras.ops.zeros_like(inputs) + coefficients[-1]
        for k in range(len(self.initial_coefficients) - 2, -1, -1):  # Horner, differentiable
            result = result * inputs + coefficients[k]
        return result

    @property
    def degree(self):
        return len(self.initial_coefficients) - 1

    @property
    def bfv_depth(self):
        return polynomial_depth(self.degree)

    @property
    def ckks_depth(self):
        return self.bfv_depth + 1

    def activations(self, input_shape):
        return feature_count(input_shape) * max(self.degree - 1, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "coefficients": self.initial_coefficients,
                "trainable_coefficients": self.trainable_coefficients}

    def __repr__(self):
        return f"<heras Poly degree {self.degree}, trainable={self.trainable_coefficients}>"
