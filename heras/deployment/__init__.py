"""Deployment: the three roles of encrypted inference and what passes between them.

- **Developer** trains and prepares a model, then :func:`save_prepared` writes a folder with
  the model, its encryption plan and ``client.json`` (no secrets).
- **Client** (:class:`Client`, from ``client.json`` only) generates keys, encrypts inputs to
  bytes and sends them with its public context; it decrypts the answer.
- **Server** (:class:`Server`, from the prepared folder) computes on bytes with public keys
  only and refuses anything that carries a secret key.
- Over HTTP, ``sealion serve`` (package ``service``) runs the server and :class:`RemoteServer`
  stands in for it on the client's side: ``client.predict(RemoteServer(url), x)``.

Example:
    >>> save_prepared(model, "deploy/")                              # developer
    >>> client = Client.from_folder("deploy/")                       # client
    >>> answer = Server("deploy/").run(client.public_context(), client.encrypt(x))   # server
    >>> logits = client.decrypt(answer)                              # client
"""

from .client import Client
from .prepared import load_prepared, save_prepared
from .remote import RemoteServer, RemoteServiceError
from .server import Server
from .spec import ClientSpec

__all__ = ["Client", "ClientSpec", "RemoteServer", "RemoteServiceError", "Server", "load_prepared",
           "save_prepared"]
