"""benchmarks/scale_out.py --quick runs end to end (its own Ray instance, in a subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason='the scale-out benchmark needs pip install -e ".[test]" (or ".[ray]")')

ROOT = Path(__file__).resolve().parents[1]


def test_scale_out_quick_matches_the_in_process_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_out.py"), "--quick", "--workers", "2",
                           "--output", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "scale_out_quick.json").read_text())["rows"]
    assert [(row["executor"], row["workers"]) for row in rows] == [("in-process", "2 cores"), ("ray", 2)]
    ray_row = rows[1]
    assert ray_row["exact"] is True and ray_row["groups"] == 2 and ray_row["units"] == 2
    assert ray_row["unit_input_mb"] > ray_row["unit_output_mb"] > 0 and ray_row["ratio"] > 0
    assert "| ray | 2 |" in (tmp_path / "scale_out_quick.md").read_text()
