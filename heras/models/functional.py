"""Model: a Keras functional model (any graph, e.g. residual Add) that also runs encrypted."""

import keras
from keras.src.models.functional import Functional

from .encrypted import EncryptedModel
from .training import TrainingDefaults


@keras.saving.register_keras_serializable(package="heras")
class Model(EncryptedModel, TrainingDefaults, Functional):
    """``keras.Model(inputs, outputs)`` whose graph also runs on `EncryptedTensor`s.

    Build it the Keras functional way with heras layers (one input, one output); everything
    Sequential offers works on the graph: ``prepare_encryption``, ``encrypt_inputs``,
    ``predict`` on ciphertexts, ``decrypt_outputs``, ``predict_discretized``,
    ``evaluate(encrypted=True)`` and the cost summary (depths are those of the longest path).
    CKKS matches the scales at an Add itself. BFV discretises every scale to a power of two in
    a functional model, so an Add multiplies its lower-scale inputs by exact powers of two.

    Example:
        >>> x = Input((8,)); h = Dense(8)(x)
        >>> model = Model(x, Dense(2)(Add()([h, Square()(h)])))
    """

    def __repr__(self):
        return f"<heras Model of [{', '.join(layer.__class__.__name__ for layer in self.layers)}]>"
