"""`Server`: runs a prepared model on a client's ciphertexts, holding public material only.

A server is given a prepared folder (``save_prepared``) and, per client, bytes: the public
context and encrypted queries. It refuses a context that carries a secret key (the client
must keep it), keys made for other parameters than the model's, and queries of the wrong
shape, each with the fix in the message. It never decrypts.

Example:
    >>> server = Server("deploy/")
    >>> answer = server.run(public_context_bytes, query_bytes)   # bytes back to the client
"""

from pathlib import Path

import primitives as P
from primitives.serialization import read_file, write_file

from .prepared import load_prepared


class Server:
    """Load a prepared model once; answer encrypted queries.

    Args:
        folder: a folder written by :func:`heras.deployment.save_prepared`.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.model = load_prepared(self.folder)
        self.plan = self.model.encryption_plan

    def load_context(self, data):
        """A client's public context from bytes, checked against the model's parameters."""
        return self._checked(P.Context.from_bytes(data))

    def _checked(self, context):
        if context.has_secret_key:
            raise P.SecretKeyError("The context sent to the server holds the client's secret key. A "
                                   "client sends Client.public_context() (public keys only); discard "
                                   "these keys, since they are no longer secret, and generate new ones.")
        if context.parameters != self.plan.parameters:
            raise P.ParameterError(
                f"The client's keys are for {context.parameters!r}; this model was prepared for "
                f"{self.plan.parameters!r}. The client must build its keys from this model's client.json.")
        return context

    def run(self, context, query):
        """The model's encrypted output for ``query``; both arguments and the result are bytes.

        Args:
            context: the client's public context (bytes, or a public :class:`primitives.Context`
                returned by :meth:`load_context`, to reuse across queries).
            query: an encrypted batch (bytes from ``Client.encrypt``).
        """
        context = self._checked(context) if isinstance(context, P.Context) else self.load_context(context)
        tensor = P.EncryptedTensor.from_bytes(query, context)
        if tensor.max_bound > self.plan.input_bound:
            raise P.OverflowRiskError(
                f"The query's values may reach {tensor.max_bound}; this model's bounds were proven for "
                f"inputs up to {self.plan.input_bound}. Encrypt with Client.encrypt, which quantises "
                "and clips inputs to that range.")
        return self.model.predict(tensor).serialize()

    def run_files(self, context_path, query_path, answer_path, overwrite=False):
        """:meth:`run` on files: read the context and the query, write the answer (never over
        an existing file unless ``overwrite``)."""
        answer_path = Path(answer_path)
        if answer_path.exists() and not overwrite:
            raise FileExistsError(f"{answer_path} exists; pass overwrite=True or choose another path.")
        answer = self.run(read_file(context_path, "context"), read_file(query_path, "tensor"))
        write_file(answer_path, answer)
        return answer_path

    def __repr__(self):
        p = self.plan.parameters
        return f"<heras Server for {self.folder} ({self.plan.scheme.upper()}, n={p.poly_modulus_degree})>"
