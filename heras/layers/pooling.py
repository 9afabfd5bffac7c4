"""Pooling with an encrypted form: AveragePooling2D (CKKS and plain) and SumPooling2D (all)."""

import keras

import primitives as P
from .base import EncryptableLayer


@keras.saving.register_keras_serializable(package="heras")
class AveragePooling2D(EncryptableLayer, keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` (channels last) that also runs on CKKS ciphertexts.

    BFV cannot divide: use SumPooling2D and fold 1/(pool area) into the next layer.
    """

    ckks_depth = 1

    def call(self, inputs):
        return P.avg_pool2d(inputs, self.pool_size, self.strides, self.padding)


@keras.saving.register_keras_serializable(package="heras")
class SumPooling2D(EncryptableLayer, keras.layers.AveragePooling2D):
    """Sum over each pooling window: exact on BFV, free of levels on CKKS."""

    def call(self, inputs):
        return P.sum_pool2d(inputs, self.pool_size, self.strides, self.padding)
