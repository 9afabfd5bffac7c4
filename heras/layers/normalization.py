"""BatchNormalization: Keras' layer, with its inference-time affine map on ciphertexts."""

import keras
import numpy as np

import primitives as P
from .base import EncryptableLayer, is_framework


@keras.saving.register_keras_serializable(package="heras")
class BatchNormalization(EncryptableLayer, keras.layers.BatchNormalization):
    """Keras batch normalisation; on ciphertexts it is x * scale + shift per channel.

    For BFV, fold it into the preceding linear layer before encryption (a prepared model
    does), since scale and shift are not integers.
    """

    ckks_depth = 1
    #: Set by BFV preparation when folded into the preceding layer: then the identity off the
    #: training path.
    folded = False

    @property
    def elementwise(self):
        """Folded, the layer is the identity on ciphertexts; unfolded, its affine map differs
        from channel to channel."""
        return self.folded

    def call(self, inputs, training=False):
        if is_framework(inputs):
            return super().call(inputs, training=training)
        if self.folded:
            return inputs
        scale, shift = self.affine()
        return P.add(P.multiply(inputs, scale), shift)

    def affine(self):
        """Return (scale, shift) numpy arrays with y = x * scale + shift at inference."""
        gamma = np.asarray(self.gamma) if self.scale else 1.0
        beta = np.asarray(self.beta) if self.center else 0.0
        inverse = 1.0 / np.sqrt(np.asarray(self.moving_variance) + self.epsilon)
        scale = gamma * inverse
        return scale, beta - np.asarray(self.moving_mean) * scale
