"""Add: element-wise sum of several inputs (residual connections), plain or encrypted."""

import keras

import primitives as P
from .base import EncryptableLayer, is_framework


@keras.saving.register_keras_serializable(package="heras")
class Add(EncryptableLayer, keras.layers.Add):
    """Sum of the inputs; on ciphertexts, CKKS aligns levels and scales automatically.

    BFV preparation of a functional model sets ``input_factors`` when its inputs arrive at
    different (power-of-two) scales: off the training path each input is multiplied by its
    integer factor first, so all of them are summed at the largest scale.
    """

    #: Set by BFV preparation: integer factors bringing the inputs to one scale (None: all 1).
    input_factors = None

    def call(self, inputs):
        factors = self.input_factors
        if factors and not is_framework(inputs[0]):
            inputs = [x if factor == 1 else P.multiply(x, factor) for x, factor in zip(inputs, factors)]
        total = inputs[0]
        for other in inputs[1:]:
            total = P.add(total, other)
        return total
