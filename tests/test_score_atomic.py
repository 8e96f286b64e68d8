"""``rewardsmith score`` is all or nothing: each way a run can fail leaves the output and the state
file byte-identical (real processes, except where a failing disk is simulated)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardsmith.cli import main

HAPO_SPEC = {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "hapo"}]}
RECS = [{"prompt_id": f"q{i % 3}", "completion": f"{'so ' * (i % 5)}Answer: {i % 2}", "answer": "0"} for i in range(12)]


@pytest.fixture
def run_dir(tmp_path):
    """A spec with a state file, rollouts, and a first successful run (output + state exist)."""
    state = tmp_path / "state" / "hapo.json"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**HAPO_SPEC, "state": str(state)}))
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in RECS))
    out = tmp_path / "out.jsonl"
    assert cli(rollouts, "--spec", spec, "-o", out).returncode == 0
    return tmp_path, spec, rollouts, out, state


def cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "rewardsmith", "score", *map(str, argv)], capture_output=True, text=True, timeout=180
    )


def snapshot(*paths):
    return {p: p.read_bytes() for p in paths}


def leftovers(*dirs):
    return sorted(p.name for d in dirs for p in d.iterdir() if p.name.startswith("."))


def assert_failed_cleanly(proc, message):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_unwritable_output_path_changes_nothing(run_dir):
    tmp, spec, rollouts, out, state = run_dir
    before = snapshot(out, state)
    blocker = tmp / "a_file"
    blocker.write_text("x")
    assert_failed_cleanly(cli(rollouts, "--spec", spec, "-o", blocker / "out.jsonl"), "is not a directory")
    assert_failed_cleanly(cli(rollouts, "--spec", spec, "-o", tmp / "state"), "is a directory")
    assert snapshot(out, state) == before and leftovers(tmp, state.parent) == []


def test_unwritable_state_path_is_refused_before_verifying(run_dir):
    tmp, _, rollouts, out, _ = run_dir
    before = snapshot(out)
    (tmp / "not_a_dir").write_text("x")
    spec = tmp / "bad_state.json"
    spec.write_text(json.dumps({**HAPO_SPEC, "state": str(tmp / "not_a_dir" / "state.json")}))
    assert_failed_cleanly(cli(rollouts, "--spec", spec, "-o", out), "state path")
    assert snapshot(out) == before


def test_unserialisable_column_is_refused_up_front(run_dir):
    tmp, spec, rollouts, out, state = run_dir
    before = snapshot(out, state)
    bad = tmp / "surrogate.jsonl"
    bad.write_text(rollouts.read_text() + '{"prompt_id": "q0", "completion": "Answer: 0 \\ud800", "answer": "0"}\n')
    parquet_out = tmp / "out.parquet"
    assert_failed_cleanly(
        cli(bad, "--spec", spec, "-o", parquet_out), "column 'completion' cannot be written to Parquet"
    )
    assert snapshot(out, state) == before and not parquet_out.exists()
    assert cli(bad, "--spec", spec, "-o", tmp / "surrogate.out.jsonl").returncode == 0  # JSONL holds it (escaped)
    assert json.loads((tmp / "surrogate.out.jsonl").read_text().splitlines()[-1])["completion"] == "Answer: 0 \ud800"


def test_bad_record_and_non_utf8_line(run_dir):
    tmp, spec, rollouts, out, state = run_dir
    before = snapshot(out, state)
    bad = tmp / "bad.jsonl"
    bad.write_bytes(
        rollouts.read_bytes()
        + b'{"prompt_id": "q9", "completion": "x", "num_tokens": Infinity}\n'
        + b'{"prompt_id": "q9", "completion": "caf\xe9"}\n'
    )
    assert_failed_cleanly(
        cli(bad, "--spec", spec, "-o", out), "bad.jsonl:13: invalid JSON (non-finite number Infinity)"
    )
    assert snapshot(out, state) == before
    skipped = cli(bad, "--spec", spec, "-o", tmp / "skipped.jsonl", "--skip-invalid")
    assert skipped.returncode == 0 and "bad.jsonl:14: not UTF-8 text" in skipped.stderr
    assert len((tmp / "skipped.jsonl").read_text().splitlines()) == len(RECS)


def test_parquet_input_with_every_column_type_scores_to_jsonl(tmp_path):
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [{**r, "when": datetime.datetime(2026, 1, 1), "price": decimal.Decimal("2.50"), "blob": b"\xff"} for r in RECS]
    )
    src = tmp_path / "r.parquet"
    pq.write_table(table, src)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**HAPO_SPEC, "state": str(tmp_path / "state.json")}))
    proc = cli(src, "--spec", spec, "-o", tmp_path / "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert (first["when"], first["price"], first["blob"]) == ("2026-01-01T00:00:00", "2.50", "/w==")
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 1


def test_failing_state_rename_puts_the_output_back(run_dir, monkeypatch, capsys):
    """The disk fails between the two renames: the output already replaced gets its old bytes back."""
    tmp, spec, rollouts, out, state = run_dir
    before = snapshot(out, state)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == state and str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["score", str(rollouts), "--spec", str(spec), "-o", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert snapshot(out, state) == before and leftovers(tmp, state.parent) == []


def test_a_rerun_after_failures_gives_the_rewards_of_an_untroubled_run(run_dir, tmp_path_factory):
    tmp, spec, rollouts, out, state = run_dir
    twin = tmp_path_factory.mktemp("twin")
    twin_state = twin / "state.json"
    twin_state.write_bytes(state.read_bytes())
    twin_spec = twin / "spec.json"
    twin_spec.write_text(json.dumps({**HAPO_SPEC, "state": str(twin_state)}))
    (tmp / "f").write_text("")
    assert cli(rollouts, "--spec", spec, "-o", tmp / "f" / "o.jsonl").returncode == 2  # failed run
    assert cli(rollouts, "--spec", spec, "-o", out).returncode == 0
    assert cli(rollouts, "--spec", twin_spec, "-o", twin / "out.jsonl").returncode == 0
    rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert rewards == [json.loads(line)["reward"] for line in (twin / "out.jsonl").read_text().splitlines()]
    assert json.loads(state.read_text()) == json.loads(twin_state.read_text())
