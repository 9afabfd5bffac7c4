"""Shared benchmark helpers: timing with medians, machine facts, JSON and markdown output."""

import datetime
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"


def median_seconds(function, repeats):
    """Run ``function`` ``repeats`` times; return (median seconds, last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_memory_mb():
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    """Facts that make timings comparable across runs."""
    import numpy
    import tenseal
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "tenseal": tenseal.__version__, "numpy": numpy.__version__}


def markdown_table(rows, columns):
    """Render ``rows`` (dicts) as a markdown table with the given ``columns`` (key, header)."""
    lines = ["| " + " | ".join(header for _, header in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_results(output, name, data, markdown):
    """Write ``name``.json and ``name``.md into ``output``; return the two paths."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output / f"{name}.json", output / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    md_path.write_text(markdown + "\n")
    return json_path, md_path
