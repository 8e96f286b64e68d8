"""Smoke test of bench/per_item_costs.py (no timing assertions): every verifier it names gets a row."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_per_item_costs_prints_a_row_per_verifier():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "per_item_costs.py"), "--items", "8"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = dict(re.findall(r"^(\w+)\s+(?:True|False)\s+(\d+)\s", proc.stdout, re.M))
    assert {"math", "exact", "choice", "sql", "tool_call", "rubric"} <= set(rows), proc.stdout
    assert all(1 <= int(n) <= 8 for n in rows.values())  # unique jobs checked, repeats dropped
