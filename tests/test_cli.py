import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rewardsmith.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text(
        json.dumps({"prompt_id": "a", "completion": "Answer: 4", "answer": "4", "keep": 1})
        + "\n"
        + json.dumps({"prompt_id": "a", "completion": "Answer: 3", "answer": "4"})
        + "\n"
        + json.dumps({"prompt_id": "b", "completion": "Answer: x", "answer": "x"})
        + "\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: exact\nlength_unit: words\n")
    return rollouts, spec


def test_score_writes_records_and_summary(files, tmp_path, capsys):
    rollouts, spec = files
    out = tmp_path / "out.jsonl"
    assert (
        main(
            ["score", str(rollouts), "--spec", str(spec), "-o", str(out), "--summary-json", str(tmp_path / "sum.json")]
        )
        == 0
    )
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0, 1.0]
    assert rows[0]["keep"] == 1 and rows[1]["correct"] is False
    text = capsys.readouterr().out
    for key in ("records", "groups", "mean_reward", "accuracy", "mean_length", "unit", "timeouts", "errors", "seconds"):
        assert key in text
    summary = json.loads((tmp_path / "sum.json").read_text())
    assert summary["groups"] == 2 and summary["accuracy"] == pytest.approx(2 / 3) and summary["unit"] == "words"


def test_default_output_path(files):
    rollouts, spec = files
    assert main(["score", str(rollouts), "--spec", str(spec)]) == 0
    assert rollouts.with_suffix(".scored.jsonl").exists()


def test_malformed_file_is_a_clear_error_and_skip_invalid_counts(files, tmp_path, capsys):
    rollouts, spec = files
    with rollouts.open("a") as fh:
        fh.write("{oops\n")
    assert main(["score", str(rollouts), "--spec", str(spec), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "r.jsonl:4: invalid JSON" in capsys.readouterr().err
    assert main(["score", str(rollouts), "--spec", str(spec), "-o", str(tmp_path / "o.jsonl"), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"skipped_invalid\s+1\n", captured.out) and "r.jsonl:4" in captured.err
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3


def test_bad_spec_exit_code_and_message(files, tmp_path, capsys):
    rollouts, _ = files
    spec = tmp_path / "bad.yaml"
    spec.write_text("verifier: nope\n")
    assert main(["score", str(rollouts), "--spec", str(spec)]) == 2
    assert "unknown verifier 'nope'; allowed:" in capsys.readouterr().err


def test_list_shows_components_and_papers(capsys):
    assert main(["list", "-v"]) == 0
    out = capsys.readouterr().out
    assert "math" in out and "Math-Verify" in out and "repetition" in out and "options:" in out
    kimi = out[out.index("  kimi ") :].split("\n  ", 3)
    assert any("capabilities: group_aware" in line for line in kimi[:3])
    assert 'example: {"name": "laser", "target": 200}' in out


def test_python_dash_m_works(files, tmp_path):
    rollouts, spec = files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "score",
            str(rollouts),
            "--spec",
            str(spec),
            "-o",
            str(tmp_path / "m.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.jsonl").exists()


def test_example_rollouts_score(tmp_path):
    out = tmp_path / "ex.jsonl"
    assert (
        main(
            [
                "score",
                str(ROOT / "examples/math_rollouts.jsonl"),
                "--spec",
                str(ROOT / "examples/specs/math_laser_style.yaml"),
                "-o",
                str(out),
                "--workers",
                "2",
            ]
        )
        == 0
    )
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 64
    assert {r["correct"] for r in rows} <= {True, False, None}
    assert all(isinstance(r["reward"], float) for r in rows)
