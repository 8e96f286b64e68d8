"""Smoke test of bench/signals.py: a tiny run prints a tokens/s row for rewardsmith, its one-at-a-time
variant and the TRL peer, with ratios (no timing assertions)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
BENCH = Path(__file__).resolve().parents[1] / "bench" / "signals.py"


def test_quick_run_prints_each_row():
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--rollouts",
            "2",
            "--prompt-len",
            "3",
            "--completion-len",
            "4",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 rollouts x 4 completion tokens after 3 prompt tokens" in proc.stdout
    for name in ("rewardsmith", "trl", "rewardsmith bs=1"):
        assert re.search(rf"^{re.escape(name)}\s+[\d,]+\s+[\d.]+x$", proc.stdout, re.MULTILINE), (name, proc.stdout)
