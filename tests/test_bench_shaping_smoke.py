"""Smoke test of bench/shaping_throughput.py: it runs on a small batch and prints a row per
shaper with a rollouts/s figure and its ratio to the target (no timing assertions)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "shaping_throughput.py"
sys.path.insert(0, str(BENCH.parent))
from shaping_throughput import SHAPERS  # noqa: E402


def test_quick_run_prints_every_shaper():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--groups", "40", "--group-size", "8", "--repeats", "1", "--text-words", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "batch: 40 groups x 8 = 320 rollouts" in out
    for name in SHAPERS:
        assert re.search(rf"^{name}\s+[\d.]+\s+[\d,]+\s+[\d.]+x  finite$", out, re.M), (name, out)
    assert re.search(r"^target: >= 1\.00x \(1,000,000 rollouts/s\); below target: ", out, re.M)
