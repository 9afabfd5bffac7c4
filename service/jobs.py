"""Encrypted work outside the event loop: each job in a forked process, behind a bounded queue.

SEAL computes on one core and holds the GIL, so a forward pass in the server's own process
would stop every other request (health, uploads) until it ends. Each job therefore runs in a
child forked from the server, as ``primitives.parallel`` runs CRT primes: the fork shares the
loaded model and the request's bytes without copying them, only the answer travels back
through a pipe, and a crash (out of memory, a SEAL abort) ends the child, not the service.
The child freezes the objects it inherits (``gc.freeze``): collecting the parent's TensorFlow
objects there segfaults. The forward pass inside the child still uses every core through
``primitives.parallel``.

:class:`JobQueue` admits a job before its upload is read (so a full queue answers at once,
and the bodies held in memory are bounded by the queue), runs at most ``workers`` jobs at a
time and never drops one it admitted: a job runs to its end even if its client hangs up.
"""

import asyncio
import logging
import math
import statistics
import time
from collections import deque

from primitives import forking

from .errors import QueueFull, WorkerFailed

log = logging.getLogger("sealion.serve")


def call_in_fork(function, *args):
    """``function(*args)`` computed in a forked child; its result, or its exception raised here.

    The result must pickle; an exception keeps its type (the library's errors and messages),
    and the child's traceback goes to the server's log, never to the client.
    """
    message, status = forking.finish(*forking.start(lambda: function(*args)))
    if message is None:
        raise WorkerFailed(f"The worker process computing this query ended without an answer "
                           f"({forking.describe(status)}). The query was not computed; retry it, or ask the "
                           "operator to give the service more memory.")
    if message[0] == "error":
        error, trace = message[1], message[2]
        if not hasattr(error, "__module__") or not error.__module__.startswith(("primitives", "service")):
            log.error("worker error:\n%s", trace)
        raise error
    return message[1]


class Ticket:
    """One admitted job's place in the queue; released if the job never starts."""

    def __init__(self, queue):
        self.queue, self.started = queue, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.started:
            self.queue.waiting -= 1


class JobQueue:
    """At most ``workers`` jobs computing and ``max_queue`` admitted jobs waiting.

    Args:
        workers: jobs computed at the same time (each forward pass already uses every core).
        max_queue: admitted jobs that may wait (uploading or queued); one more is refused with
            :class:`QueueFull` (503 and a Retry-After estimated from recent job times).
    """

    def __init__(self, workers=1, max_queue=8):
        if workers < 1 or max_queue < 0:
            raise ValueError(f"Expected workers >= 1 and max_queue >= 0. Received: {workers}, {max_queue}")
        self.workers, self.max_queue = workers, max_queue
        self.waiting = self.running = 0
        self.completed = 0
        self._slots = None
        self._seconds = deque(maxlen=32)

    def admit(self):
        """Reserve a place for one job, before its upload is read; raise QueueFull past the limit."""
        if self.waiting >= self.max_queue:
            raise QueueFull(self.waiting, self.retry_after())
        self.waiting += 1
        return Ticket(self)

    def retry_after(self):
        """Whole seconds until a place is likely free: the jobs ahead times the median job time."""
        typical = statistics.median(self._seconds) if self._seconds else 1.0
        return max(1, math.ceil(typical * (self.waiting + self.running) / self.workers))

    async def run(self, ticket, function, *args):
        """Compute ``function(*args)`` in a forked child once a worker slot is free.

        The job is shielded: if the request is cancelled (its client hung up), the job still
        runs to its end and keeps its slot until then, so the count of running jobs stays true.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        ticket.started = True
        job = asyncio.ensure_future(self._run(function, args))
        return await asyncio.shield(job)

    async def _run(self, function, args):
        async with self._slots:
            self.waiting -= 1
            self.running += 1
            start = time.perf_counter()
            try:
                return await asyncio.to_thread(call_in_fork, function, *args)
            finally:
                self._seconds.append(time.perf_counter() - start)
                self.running -= 1
                self.completed += 1
