"""Smoke test of bench/verify_throughput.py (no timing assertions) and its batch generator."""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
from _data import make_batch, nested_fraction  # noqa: E402


@pytest.mark.slow  # runs TRL's reward in a subprocess beside the engine's workers
@pytest.mark.timeout(120)
def test_quick_run_prints_throughputs_ratio_and_agreement():
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "verify_throughput.py"),
            "--quick",
            "--pathological-rate",
            "0.1",
            "--trl-cap-s",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "batch: 8 prompts x 4 rollouts = 32 completions" in out
    assert re.search(r"^ratio rewardsmith/TRL: (\d+\.\d+|nan)x \(target >= 4x", out, re.M), out
    assert re.search(r"rewardsmith math.*\n\s+32 rollouts in [\d.]+ s -> [\d.]+ rollouts/s", out), out
    assert re.search(r"slowest item: [\d.]+ s \(target <= timeout \+ 1 s", out), out
    assert re.search(r"agreement on the \d+ items both scored", out), out
    assert "SHARED" in out


def test_batch_is_deterministic_by_seed():
    a, b, c = make_batch(6, 8, 0.05, seed=3), make_batch(6, 8, 0.05, seed=3), make_batch(6, 8, 0.05, seed=4)
    assert a == b
    assert a != c


def test_batch_shape_groups_and_pathological_share():
    batch = make_batch(prompts=64, rollouts=16, pathological_rate=0.01, seed=0)
    assert len(batch) == 1024
    assert sum(r.pathological for r in batch) == round(0.01 * 1024)  # 10: too few for a whole pathological group
    ids = [r.prompt_id for r in batch]
    assert ids == sorted(ids) and len(set(ids)) == 64  # grouped and consecutive, as a trainer sends them
    answers = defaultdict(set)
    for r in batch:
        if r.boxed and not r.pathological:
            answers[r.prompt_id].add(r.answer)
    assert max(len(v) for v in answers.values()) <= 4
    assert sum(len(v) >= 2 for v in answers.values()) > 0.7 * 64
    assert any(not r.boxed for r in batch)


def test_pathological_reference_groups_appear_at_higher_rates():
    batch = make_batch(prompts=32, rollouts=16, pathological_rate=0.1, seed=1)
    patho_refs = [r for r in batch if r.kind == "patho_ref"]
    assert len(patho_refs) == 16  # 51 pathological: int(0.4 * 51) // 16 = 1 whole group, 35 single predictions
    assert all(r.pathological for r in patho_refs)
    assert sum(r.pathological for r in batch) == 51


def test_nested_fraction_value_follows_depth_parity():
    assert nested_fraction(3) == r"\frac{1}{\frac{1}{\frac{1}{2}}}"  # 1/(1/(1/2)) = 1/2
    assert len(nested_fraction(200)) == 9 * 200 + 1 + 200
