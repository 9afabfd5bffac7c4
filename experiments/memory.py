"""Peak memory of this process and its worker processes, measured without double counting.

Forked workers share the parent's pages (inputs, keys, the model), so adding up resident set
sizes counts those pages twice or more. The proportional set size (PSS, Linux
``/proc/PID/smaps_rollup``) charges each shared page to its sharers in equal parts: the PSS
of a process tree adds up to the memory it really holds. :class:`MemorySampler` samples that
sum in a background thread; on systems without ``smaps_rollup`` it reports None.

Reading ``smaps_rollup`` walks the process's page tables: about 10 ms per 2 GB resident, so
sampling a 3-process, 6 GB tree every 0.2 s took ~15% of a core and slowed the measured
computation (CNN-16: 83 s per batch under the sampler, ~70 s without). The sampler therefore
waits at least :data:`MAX_DUTY_FACTOR` times as long as its last sample took, so it never uses
more than ~2% of a core; memory that repeats per streamed block is still seen at its peak.
"""

import os
import threading
import time
from pathlib import Path

MAX_DUTY_FACTOR = 50   # wait >= 50 x the last sample's duration: at most ~2% of one core


def _pss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def _descendants(pid):
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            stack.extend(children)
    return found


def tree_pss_mb(pid=None):
    """PSS of ``pid`` (default: this process) and all its descendants, in MiB; None if unknown."""
    pid = pid or os.getpid()
    if not Path(f"/proc/{pid}/smaps_rollup").exists():
        return None
    return sum(_pss_kib(p) for p in [pid, *_descendants(pid)]) / 1024


class MemorySampler:
    """Context manager: the largest :func:`tree_pss_mb` seen every ``interval`` seconds (or
    less often when sampling is expensive, see the module docstring).

    Example:
        >>> with MemorySampler() as memory:
        ...     run()
        >>> memory.peak_mb
    """

    def __init__(self, interval=0.2):
        self.interval, self.peak_mb, self.samples = interval, None, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        value = tree_pss_mb()
        self.samples += 1
        if value is not None:
            self.peak_mb = value if self.peak_mb is None else max(self.peak_mb, value)

    def _run(self):
        wait = self.interval
        while not self._stop.wait(wait):
            start = time.perf_counter()
            self._sample()
            wait = max(self.interval, MAX_DUTY_FACTOR * (time.perf_counter() - start))

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        return False
