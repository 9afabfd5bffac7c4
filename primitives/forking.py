"""Compute a function in a forked child process and bring its answer (or its error) back.

Used by :mod:`primitives.parallel` (one CRT prime or ciphertext group per worker) and by the
HTTP service (one query per child, so a crash ends the child, not the server). A fork shares
the parent's inputs, keys and model without copying or serialising them; only the answer
travels back, pickled, through a pipe.

The child freezes the objects it inherits (``gc.freeze``) so that the garbage collector never
finalises the parent's objects there: a collected TensorFlow function calls into an eager
context that does not survive a fork, and segfaults. The child's own garbage is still
collected. The child exits with ``os._exit``, skipping the parent's cleanup handlers.
"""

import gc
import os
import pickle
import traceback


def start(function, in_child=None):
    """Fork; the child computes ``function()`` and sends ``("ok", result)`` or ``("error",
    exception, traceback text)`` through a pipe, then exits.

    Args:
        function: called with no arguments in the child; its result must pickle.
        in_child: called first in the child (e.g. to route progress reports to the parent).

    Returns:
        ``(pid, reader)``: pass both to :func:`finish`.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        gc.freeze()
        os.close(read_fd)
        status = 0
        try:
            if in_child is not None:
                in_child()
            payload = pickle.dumps(("ok", function()))
        except BaseException as error:  # noqa: BLE001 - every failure must reach the parent
            status = 1
            trace = traceback.format_exc()
            try:
                payload = pickle.dumps(("error", error, trace))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                payload = pickle.dumps(("error", RuntimeError(f"{type(error).__name__}: {error}"), trace))
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        finally:  # never return into the parent's code, even if the parent has gone
            os._exit(status)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb")


def finish(pid, reader):
    """Wait for the child of :func:`start`; return ``(message, status)``.

    ``message`` is the child's ``("ok", result)`` or ``("error", exception, traceback)``, or
    None if it died without sending one (killed, crashed); ``status`` is its wait status, which
    :func:`describe` puts into words.
    """
    with reader:
        data = reader.read()
    _, status = os.waitpid(pid, 0)
    return (pickle.loads(data) if data else None), status


def describe(status):
    """How a child ended, from its wait status (a signal points at memory or a crash)."""
    if os.WIFSIGNALED(status):
        signal_number = os.WTERMSIG(status)
        hint = " (killed: out of memory?)" if signal_number == 9 else ""
        return f"ended by signal {signal_number}{hint}"
    return f"exit code {os.WEXITSTATUS(status)}"
