"""Sequential: a Keras Sequential model that also predicts on encrypted tensors."""

import keras

import primitives as P
from .costs import check_encryptable, encryption_costs, format_costs


@keras.saving.register_keras_serializable(package="heras")
class Sequential(keras.Sequential):
    """``keras.Sequential`` with encrypted inference and an encryption-cost summary.

    Train it the Keras way (``compile``, ``fit``, ``evaluate``, ``predict``); then
    ``predict(encrypted_x)`` runs the same layers on an `EncryptedTensor`, with public keys
    only, and returns an `EncryptedTensor`.

    Example:
        >>> model = Sequential([Input((784,)), Dense(30), Square(), Dense(10)])
        >>> model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    """

    def predict(self, x, *args, **kwargs):
        """Keras' predict for arrays; layer-by-layer encrypted inference for an EncryptedTensor."""
        if P.is_encrypted(x):
            return self.encrypted_forward(x)
        return super().predict(x, *args, **kwargs)

    def encrypted_forward(self, x):
        """Run every layer's ``call`` on the encrypted tensor ``x`` (public material only)."""
        check_encryptable(self.layers)
        expected = tuple(self.inputs[0].shape[1:]) if self.inputs else None
        if expected is not None and tuple(x.shape) != expected:
            raise P.ShapeError(f"The model expects inputs of per-sample shape {expected}; the "
                               f"encrypted tensor has shape {tuple(x.shape)}.")
        for layer in self.layers:
            x = layer.call(x)
        return x

    def encryption_costs(self):
        """Per-layer rows: output shape, parameters, activations, cumulative BFV/CKKS depth."""
        return encryption_costs(self)

    def summary(self, *args, **kwargs):
        """Keras' summary, then what each layer costs on ciphertexts."""
        super().summary(*args, **kwargs)
        print_fn = kwargs.get("print_fn") or print
        print_fn(format_costs(self.encryption_costs()))

    def __repr__(self):
        return f"<heras Sequential of [{', '.join(layer.__class__.__name__ for layer in self.layers)}]>"
