"""Smoke test of bench/serve_load.py (a real server on loopback; no timing assertions)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "serve_load.py"


@pytest.mark.timeout(240)
def test_serve_load_reports_rate_and_latency_per_scenario():
    pytest.importorskip("uvicorn")
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--clients", "4", "--hang-rates", "0", "0.5", "--requests", "2"],
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(
        r"^\s+4\s+(\d+)%\s+(\d+)/(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.na]+)\s+([\d.na]+)$", proc.stdout, re.M
    )
    assert [r[0] for r in rows] == ["0", "50"], proc.stdout
    assert all(r[1] == r[2] == "8" for r in rows), proc.stdout  # every request answered
    assert "machine:" in proc.stdout and "failed:" not in proc.stdout
