"""experiments.memory: the process tree's memory, shared pages counted once."""

import os
import sys
import time

import numpy as np
import pytest

from experiments.memory import MemorySampler, tree_pss_mb

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PSS is read from /proc")


def test_sampler_counts_a_worker_once_and_its_own_pages():
    shared = np.ones(300 * 2 ** 20 // 8)      # 300 MiB the worker shares without copying
    base = tree_pss_mb()
    with MemorySampler(interval=0.05) as memory:
        ready_read, ready_write = os.pipe()
        done_read, done_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            own = np.ones(200 * 2 ** 20 // 8)  # 200 MiB of the worker's own
            os.write(ready_write, b"1")
            os.read(done_read, 1)               # alive until the sampler has seen it
            os._exit(0 if own[0] == shared[0] else 1)
        os.read(ready_read, 1)
        seen, deadline = memory.samples, time.monotonic() + 60
        while memory.samples < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.05)                    # the sampler slows down in a large process
        os.write(done_write, b"1")
        os.waitpid(pid, 0)
    extra = memory.peak_mb - base
    assert 150 < extra < 260, extra           # the worker's own pages, not the shared 300 MiB again
