"""Progress of one computation, reported by whichever process does the work.

:mod:`primitives.parallel` forks worker processes; a progress report made in a worker would
otherwise be printed (or lost) there, one display per process. Instead, code that computes
calls :func:`report` with a small event (a tuple of plain values), and the caller that wants
to show progress wraps the computation in :func:`listening`: its listener is called with
every event, in the parent process, whether the event was made there or in a worker. Workers
send their events over a pipe (one per worker, opened by :func:`open_channel` before the
fork); a thread in the parent reads it and calls the listener, under one lock, so listener
calls never overlap. Without a listener, :func:`report` does nothing.

Example:
    >>> seen = []
    >>> with listening(lambda *event: seen.append(event)):
    ...     report("step", "dense")
    >>> seen
    [('step', 'dense')]
"""

import contextlib
import os
import pickle
import struct
import threading

_listener = None          # the parent's listener while listening
_channel = None           # in a worker: write end of the pipe to the parent
_lock = threading.Lock()  # listener calls from the main thread and the relay threads
_HEADER = struct.Struct("<I")


@contextlib.contextmanager
def listening(listener):
    """Call ``listener(*event)`` for each :func:`report` made during the block, by this process
    or by the workers it forks (see :mod:`primitives.parallel`)."""
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous


def report(*event):
    """Tell the listener (in the parent process, if any is listening) about ``event``.

    ``event`` must be picklable and small (it travels over a pipe from a worker).
    """
    if _channel is not None:
        payload = pickle.dumps(event)
        # one write of at most PIPE_BUF bytes is atomic: events from one worker never interleave
        os.write(_channel, _HEADER.pack(len(payload)) + payload)
    elif _listener is not None:
        with _lock:
            _listener(*event)


def open_channel():
    """Before a fork: a pipe ``(read_fd, write_fd)`` for the worker's events, or None when no
    one is listening."""
    if _listener is None and _channel is None:
        return None
    return os.pipe()


def in_worker(channel):
    """In a freshly forked worker: send reports through ``channel`` (from :func:`open_channel`)."""
    global _channel, _listener
    if channel is None:
        return
    read_fd, write_fd = channel
    os.close(read_fd)
    if _channel is not None:  # a worker of a worker: its parent relays to the listener
        os.close(_channel)
    _channel, _listener = write_fd, None


def in_parent(channel):
    """In the parent, right after the fork: close the worker's end of ``channel`` (so the pipe
    ends when the worker does) and return the end to :func:`relay` from, or None."""
    if channel is None:
        return None
    read_fd, write_fd = channel
    os.close(write_fd)
    return read_fd


def relay(read_fd):
    """In the parent, once every worker is forked (no thread is ever forked): a started thread
    that hands a worker's events to the listener (or, in a worker that forked, forwards them)
    until the worker closes the pipe. Returns None for None; ``join()`` it once the worker ended."""
    if read_fd is None:
        return None
    thread = threading.Thread(target=_relay, args=(read_fd,), name="sealion-progress", daemon=True)
    thread.start()
    return thread


def _relay(read_fd):
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            header = pipe.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return  # the worker exited (or died): its result, or error, is collected elsewhere
            payload = pipe.read(_HEADER.unpack(header)[0])
            try:
                event = pickle.loads(payload)
            except Exception:  # noqa: BLE001 - a truncated event from a dying worker
                return
            try:
                report(*event)
            except Exception:  # noqa: BLE001 - a failing display must not stall the worker:
                pass           # keep draining the pipe so its writes never block
