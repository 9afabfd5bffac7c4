"""Model: a Keras functional model (any graph, e.g. residual Add) that also runs encrypted."""

import keras
from keras.src.models.functional import Functional

import primitives as P
from .costs import check_encryptable


@keras.saving.register_keras_serializable(package="heras")
class Model(Functional):
    """``keras.Model(inputs, outputs)`` whose graph also runs on `EncryptedTensor`s.

    Build it the Keras functional way with heras layers; ``encrypted_forward`` walks the graph
    calling each layer's ``call`` on ciphertexts. Preparation (``prepare_encryption``) is
    Sequential-only for now: use it with weights already in encryptable form (CKKS), or
    hand-set integer weights (BFV).

    Example:
        >>> x = Input((8,)); h = Dense(8)(x)
        >>> model = Model(x, Dense(2)(Add()([h, Square()(h)])))
    """

    def encrypted_forward(self, x):
        """Run the graph on the encrypted tensor ``x`` with public material only."""
        check_encryptable(self.layers)
        expected = tuple(self.inputs[0].shape[1:])
        if tuple(x.shape) != expected:
            raise P.ShapeError(f"The model expects inputs of per-sample shape {expected}; the "
                               f"encrypted tensor has shape {tuple(x.shape)}.")
        return self._run_through_graph(x, operation_fn=lambda layer: layer.call)

    def predict(self, x, *args, **kwargs):
        """Keras' predict for arrays; the encrypted graph for an EncryptedTensor."""
        if P.is_encrypted(x):
            return self.encrypted_forward(x)
        return super().predict(x, *args, **kwargs)

    def __repr__(self):
        return f"<heras Model of [{', '.join(layer.__class__.__name__ for layer in self.layers)}]>"
