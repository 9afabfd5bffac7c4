"""Add: element-wise sum of several inputs (residual connections), plain or encrypted."""

import keras

import primitives as P
from .base import EncryptableLayer


@keras.saving.register_keras_serializable(package="heras")
class Add(EncryptableLayer, keras.layers.Add):
    """Sum of the inputs; on ciphertexts, CKKS aligns levels and scales automatically."""

    def call(self, inputs):
        total = inputs[0]
        for other in inputs[1:]:
            total = P.add(total, other)
        return total
