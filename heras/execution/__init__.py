"""Where an encrypted forward pass runs: this machine's process pool, or a Ray cluster.

An executor has one method, ``forward(model, x, progress)``, returning the model's output on
the encrypted batch ``x``. Two are provided:

- ``"local"`` (:class:`LocalExecutor`, the default): the forward pass on this machine, BFV CRT
  primes (or ciphertext groups) in forked worker processes (:mod:`primitives.parallel`).
- ``"ray"`` (:class:`heras.execution.ray_executor.RayExecutor`): (ciphertext group, CRT prime)
  work units as Ray tasks, on a local Ray instance or a cluster. Needs the optional extra:
  ``pip install -e ".[ray]"``. Ray is imported only when this executor starts.

Both return the same integers (BFV): every unit is the same computation, and the results are
stitched in order. ``model.evaluate(x, y, encrypted=True, executor="ray")``,
``model.encrypted_forward(x, executor=...)`` and ``sealion run CONFIG --executor ray`` take
a name or an executor object.
"""

import contextlib

from .local import LocalExecutor

EXECUTORS = ("local", "ray")


def get_executor(executor=None, address=None):
    """Return an executor for a name (``"local"``, ``"ray"``), None (local) or an executor.

    Args:
        executor: a name from :data:`EXECUTORS`, None, or an object with ``forward``.
        address: Ray only: the cluster to join (``"auto"``, ``"HOST:6379"`` or
            ``"ray://HOST:10001"``); None starts a local Ray instance.

    Raises:
        ValueError: for an unknown name, or an address given to the local executor.
    """
    if executor is not None and not isinstance(executor, str):
        if not callable(getattr(executor, "forward", None)):
            raise TypeError("Expected `executor` to be one of "
                            f"{', '.join(map(repr, EXECUTORS))} or an executor object with a "
                            f"forward(model, x, progress) method. Received: {executor!r}")
        return executor
    name = "local" if executor is None else executor.strip().lower()
    if name not in EXECUTORS:
        raise ValueError(f"Unknown executor {executor!r}. Expected one of: {', '.join(EXECUTORS)}.")
    if name == "local":
        if address is not None:
            raise ValueError(f"An address ({address!r}) only applies to the Ray executor; use "
                             "executor='ray' (--executor ray) to join a cluster.")
        return LocalExecutor()
    from .ray_executor import RayExecutor
    return RayExecutor(address=address)


@contextlib.contextmanager
def use(executor=None, address=None):
    """:func:`get_executor` for the length of a ``with`` block; an executor made here from a name
    is closed at the end (a Ray instance it started is shut down), one passed in is not."""
    made = executor is None or isinstance(executor, str)
    resolved = get_executor(executor, address)
    try:
        yield resolved
    finally:
        if made and hasattr(resolved, "close"):
            resolved.close()


__all__ = ["EXECUTORS", "LocalExecutor", "get_executor", "use"]
