"""Shared benchmark helpers: repeated timing, phase timing, machine facts, JSON and markdown output."""

import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"


def time_repeats(function, repeats, warmup=1):
    """Time ``function`` over ``repeats`` calls after ``warmup`` untimed ones.

    Args:
        function: a callable taking no arguments.
        repeats: timed calls (at least 1).
        warmup: untimed calls first (first-call allocations and caches).

    Returns:
        A dict with ``median_s``, ``min_s``, ``max_s`` and ``repeats``.

    Raises:
        ValueError: if ``repeats`` is not a positive integer.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"Expected `repeats` to be a positive integer. Received: repeats={repeats!r}")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


def timed(phases, name, function):
    """Call ``function`` once, store its wall time in ``phases[name]`` (seconds); return its result."""
    start = time.perf_counter()
    result = function()
    phases[name] = time.perf_counter() - start
    return result


def peak_memory_mb():
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine():
    """Facts that make timings comparable across runs: date, cores, versions, platform."""
    import numpy
    import tenseal
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "tenseal": tenseal.__version__, "numpy": numpy.__version__}


def machine_line(facts):
    """One markdown line summarising :func:`machine` output."""
    return (f"Machine: {facts['cores']} cores, {facts['platform']}, Python {facts['python']}, "
            f"TenSEAL {facts['tenseal']}, numpy {facts['numpy']}; {facts['date']}.")


def markdown_table(rows, columns):
    """Render ``rows`` (dicts) as a markdown table.

    Args:
        rows: one dict per table row.
        columns: (key, header) pairs; missing keys render as empty cells.
    """
    lines = ["| " + " | ".join(header for _, header in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def _format(value):
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_results(output, name, data, markdown):
    """Write ``name``.json and ``name``.md into the folder ``output``; return the two paths."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output / f"{name}.json", output / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md_path.write_text(markdown + "\n")
    return json_path, md_path
