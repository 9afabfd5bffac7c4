"""One progress display for an encrypted forward pass, whichever processes compute it.

heras reports the pass through :mod:`primitives.progress`: a ``("start", steps)`` event, then
one ``("step", label)`` per layer of each CRT component part and per streamed block, from the
parent process or from its forked workers (their events come back over pipes). A
:class:`ForwardProgress` listens to those events and shows one display for the whole pass:

- on a terminal, Keras' progress bar (steps done, elapsed time, estimate of the time left);
- otherwise (CI logs, files), one plain line per step, with no carriage return and no
  terminal escapes: ``forward: step 3/12 (dense_1) 4.2 s elapsed, ~12.6 s left``.
"""

import sys
import time

import keras

import primitives as P

SILENT, BAR, LINES = 0, 1, 2


def display_mode(verbose=None, stream=None):
    """Keras-style verbosity: 0 silent, 1 a bar, 2 one line per step; None: a bar on a terminal."""
    if verbose is not None:
        if verbose not in (SILENT, BAR, LINES):
            raise ValueError(f"Expected `verbose` to be 0, 1 or 2 (or None). Received: verbose={verbose!r}")
        return verbose
    stream = sys.stdout if stream is None else stream
    return BAR if getattr(stream, "isatty", lambda: False)() else LINES


class ForwardProgress:
    """Listener of :mod:`primitives.progress` events that displays one forward pass.

    Args:
        title: what the lines start with.
        mode: :data:`SILENT`, :data:`BAR` or :data:`LINES` (see :func:`display_mode`).
        log: where the lines of :data:`LINES` go (one call per line).

    Use as a context manager around the pass::

        with ForwardProgress("batch 1/2 forward", LINES, print):
            model.encrypted_forward(x)
    """

    def __init__(self, title="forward", mode=LINES, log=print):
        self.title, self.mode, self.log = title, mode, log
        self.total, self.done, self.bar, self.started = None, 0, None, time.perf_counter()
        self._listening = None

    def __enter__(self):
        self._listening = P.progress.listening(self)
        self._listening.__enter__()
        return self

    def __exit__(self, *exc):
        return self._listening.__exit__(*exc)

    def __call__(self, kind, *args):
        if kind == "start":
            self.total, self.done, self.started = int(args[0]), 0, time.perf_counter()
            if self.mode == BAR:
                self.bar = keras.utils.Progbar(self.total, verbose=1, unit_name="step")
        elif kind == "step":
            self.done += 1
            self._show(args[0] if args else "")

    def _show(self, label):
        if self.mode == BAR and self.bar is not None:
            self.bar.update(min(self.done, self.total))
        elif self.mode == LINES:
            elapsed = time.perf_counter() - self.started
            total = self.total if self.total is not None else "?"
            line = f"{self.title}: step {self.done}/{total} ({label}) {elapsed:.1f} s elapsed"
            if self.total and self.done < self.total:
                line += f", ~{elapsed / self.done * (self.total - self.done):.1f} s left"
            self.log(line)
            sys.stdout.flush()  # a log file or CI pipe sees each step as it happens, not at exit

    def __repr__(self):
        return f"<ForwardProgress {self.title!r}: {self.done}/{self.total} steps>"
