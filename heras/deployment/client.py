"""`Client`: the data owner's side. Keys, encrypted queries out, predictions back in.

The client holds the secret key and never sends it: :meth:`Client.public_context` and
:meth:`Client.encrypt` return bytes made of public keys and ciphertexts only. The server
answers with ciphertexts that only :meth:`Client.decrypt` can read.

Example:
    >>> client = Client.from_folder("deploy/")           # reads deploy/client.json
    >>> send(client.public_context(), client.encrypt(x)) # public keys, ciphertexts
    >>> logits = client.decrypt(receive())
"""

from pathlib import Path

import primitives as P
from primitives.serialization import write_file

from .spec import ClientSpec


class Client:
    """Generate keys for a prepared model, encrypt its inputs, decrypt its outputs.

    Args:
        spec: the model's :class:`ClientSpec` (``client.json`` of a prepared folder).
        context: the client's private context, to reuse keys made earlier (see
            :meth:`save_keys`); by default new keys are generated for ``spec.parameters``.
    """

    def __init__(self, spec, context=None):
        if not isinstance(spec, ClientSpec):
            raise TypeError("Expected `spec` to be a heras.deployment.ClientSpec (Client.from_folder "
                            f"reads one). Received: {type(spec).__name__}")
        if context is None:
            context = P.Context(spec.parameters)
        context.require_secret_key("act as the client")
        if context.parameters != spec.parameters:
            raise P.ParameterError("These keys were made for other parameters than the model's; "
                                   "create the client without `context` to generate matching keys.")
        self.spec = spec
        self._context = context
        self._public = None

    @classmethod
    def from_folder(cls, folder, context=None):
        """A client for the prepared model in ``folder`` (only its ``client.json`` is read)."""
        return cls(ClientSpec.load(folder), context)

    @classmethod
    def from_model(cls, model, context=None):
        """A client for a prepared model held in this process."""
        return cls(ClientSpec.from_model(model), context)

    @property
    def context(self):
        """The private context (secret key included): never send it."""
        return self._context

    def public_context(self):
        """Bytes for the server: public and relinearisation keys, no secret key (made once)."""
        if self._public is None:
            self._public = self._context.serialize(save_secret_key=False)
        return self._public

    def predict(self, server, x):
        """Logits for ``x``, computed encrypted by ``server``: a :class:`Server` or a
        :class:`RemoteServer` (anything with ``run(public_context, query) -> answer bytes``).
        A RemoteServer uploads the public context once, then reuses it."""
        return self.decrypt(server.run(self.public_context(), self.encrypt(x)))

    def encrypt(self, x):
        """Quantise and encrypt a batch ``x`` of shape (batch, *input_shape); returns bytes."""
        return self.encrypt_tensor(x).serialize()

    def encrypt_tensor(self, x):
        """Like :meth:`encrypt`, but returns the :class:`primitives.EncryptedTensor`."""
        return P.encrypt(self._context, self.spec.quantize(x), bound=self.spec.input_bound)

    def decrypt(self, data):
        """The server's answer (bytes or an EncryptedTensor) as float logits (batch, outputs)."""
        return self.spec.decode(self.decrypt_raw(data))

    def decrypt_raw(self, data):
        """The server's answer as the model computed it: exact integers for BFV (compare them
        with ``model.predict_discretized``), reals for CKKS."""
        tensor = data if isinstance(data, P.EncryptedTensor) else P.EncryptedTensor.from_bytes(data, self._context)
        return P.decrypt(self._context, tensor)

    def save_keys(self, path, overwrite=False):
        """Store the private context (secret key included) for this client's own later use."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace the keys stored there.")
        write_file(path, self._context.serialize(save_secret_key=True))

    @classmethod
    def load_keys(cls, folder, path):
        """A client for ``folder``'s model with the keys :meth:`save_keys` wrote to ``path``."""
        return cls.from_folder(folder, P.Context.load(path))

    def __repr__(self):
        return f"<heras Client for {self.spec!r}, holds the secret key>"
