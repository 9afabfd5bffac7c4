"""Sequential: a Keras Sequential model that also predicts on encrypted tensors."""

import keras

from .encrypted import EncryptedModel
from .training import TrainingDefaults


@keras.saving.register_keras_serializable(package="heras")
class Sequential(EncryptedModel, TrainingDefaults, keras.Sequential):
    """``keras.Sequential`` with encrypted inference and an encryption-cost summary.

    Train it the Keras way (``compile``, ``fit``, ``evaluate``, ``predict``), with defaults
    suited to square activations (:mod:`heras.models.training`): ``compile()`` without an
    optimizer uses Adam(3e-3, clipnorm=1) annealed to 0 by a cosine over each ``fit``, and a
    cross-entropy named by string reads the outputs as logits; then
    ``prepare_encryption`` and ``predict(encrypted_x)`` runs the same layers on an
    `EncryptedTensor`, with public keys only, and returns an `EncryptedTensor` (see
    :class:`~heras.models.encrypted.EncryptedModel`).

    Example:
        >>> model = Sequential([Input((784,)), Dense(30), Square(), Dense(10)])
        >>> model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    """

    def __repr__(self):
        return f"<heras Sequential of [{', '.join(layer.__class__.__name__ for layer in self.layers)}]>"
