"""Pooling with an encrypted form: AveragePooling2D (CKKS and plain) and SumPooling2D (all)."""

import keras

import primitives as P
from .base import EncryptableLayer, is_framework


@keras.saving.register_keras_serializable(package="heras")
class AveragePooling2D(EncryptableLayer, keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` (channels last) that also runs on CKKS ciphertexts.

    BFV cannot divide: use SumPooling2D and fold 1/(pool area) into the next layer.
    """

    ckks_depth = 1
    #: Set by BFV preparation: off the training path, sum instead (the area joins the scale).
    as_sum_pooling = False

    def call(self, inputs):
        if self.as_sum_pooling and not is_framework(inputs):
            return P.sum_pool2d(inputs, self.pool_size, self.strides, self.padding)
        return P.avg_pool2d(inputs, self.pool_size, self.strides, self.padding)


@keras.saving.register_keras_serializable(package="heras")
class SumPooling2D(EncryptableLayer, keras.layers.AveragePooling2D):
    """Sum over each pooling window: exact on BFV, free of levels on CKKS."""

    def call(self, inputs):
        return P.sum_pool2d(inputs, self.pool_size, self.strides, self.padding)
