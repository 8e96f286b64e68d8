"""The output contract of rewardsmith.pipeline: on every row, ``components`` sum exactly to ``reward``,
and ``score`` and ``audit`` report the same zero-variance count on the same file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardsmith import read_records
from rewardsmith.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _runs_outside_the_lab(path: Path) -> bool:
    """Lab specs that train with an objective (DRPO), read the policy being trained (``signals.model:
    policy``) or a lab-trained reward model (``lab-rm:``) only run inside ``rewardsmith lab``; their
    scoring is tested in tests/test_lab_*."""
    text = path.read_text()
    return not any(marker in text for marker in ("objective:", "model: policy", "lab-rm:"))


SPECS = sorted(p for p in (ROOT / "examples" / "specs").rglob("*.yaml") if _runs_outside_the_lab(p))
EXAMPLE_ROLLOUTS = ROOT / "examples" / "math_rollouts.jsonl"


def gated_rollouts(path: Path) -> Path:
    """Rollouts with format failures (no think block), right and wrong, repetitive and not, truncated."""
    rows = []
    for p in range(4):
        for k, text in enumerate(
            [
                "<think>step step step step</think> \\boxed{4}\n#### 4",
                "so so so so so \\boxed{4}\n#### 4",
                "<think>try</think> \\boxed{5}\n#### 5",
                "no think, no answer at all",
            ]
        ):
            rows.append(
                {
                    "prompt_id": f"q{p}",
                    "completion": text,
                    "answer": "4",
                    "num_tokens": 8 + 3 * k + p,
                    "truncated": k == 3,
                    "step": p,
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def score(source: Path, spec: Path, out: Path) -> None:
    assert main(["score", str(source), "--spec", str(spec), "-o", str(out), "--workers", "1"]) == 0


def assert_components_sum(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    for row in rows:
        total = math.fsum(row["components"].values())
        assert abs(total - row["reward"]) <= 1e-9, (row["components"], row["reward"])
    return rows


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ROOT / "examples" / "specs")))
@pytest.mark.parametrize("rollouts", ["example", "gated"])
def test_every_example_spec_components_sum_to_reward(spec, rollouts, tmp_path):
    source = EXAMPLE_ROLLOUTS if rollouts == "example" else gated_rollouts(tmp_path / "gated.jsonl")
    out = tmp_path / "out.jsonl"
    score(source, spec, out)
    assert_components_sum(out)


@pytest.mark.parametrize(
    "fmt",
    [
        {"name": "think_answer", "mode": "gate"},
        {"name": "think_answer", "mode": "add", "weight": 0.5},
    ],
)
def test_replacing_shapers_and_the_gate_sum_to_reward(fmt, tmp_path):
    """Shapers that replace the reward (cosine, truncation) and ones that add to it, after a gate or an added format."""
    spec = tmp_path / "s.json"
    spec.write_text(
        json.dumps(
            {
                "verifier": {"name": "exact", "extract": ["hash"]},
                "base": {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0},
                "format": fmt,
                "length_unit": "tokens",
                "shaping": [
                    {"name": "cosine", "max_len": 16, "exceed_margin": 2},
                    {"name": "repetition", "ngram": 1, "max_penalty": -0.5},
                    {"name": "kimi"},
                    {"name": "truncation", "max_len": 14},
                ],
            }
        )
    )
    out = tmp_path / "out.jsonl"
    score(gated_rollouts(tmp_path / "g.jsonl"), spec, out)
    rows = assert_components_sum(out)
    failed = [r for r in rows if not r["format_ok"]]
    assert failed and all(r["correct"] is not None for r in rows)
    if fmt["mode"] == "gate":
        # a right answer failing the format: correctness 1, no shaping, the gate brings it to no_answer
        row = next(r for r in failed if r["correct"])
        assert row["reward"] == -1.0 and row["components"]["correctness"] == 1.0 and row["components"]["gate"] == -2.0
        assert row["components"]["repetition"] == 0.0 and row["components"]["kimi"] == 0.0
    else:
        assert "gate" not in rows[0]["components"] and {r["components"]["format"] for r in rows} == {0.0, 0.5}


def test_score_and_audit_report_the_same_zero_variance_count(tmp_path, capsys):
    rollouts = tmp_path / "r.jsonl"
    rows = [{"prompt_id": "all_right", "completion": "#### 4", "answer": "4"}] * 3
    rows += [{"prompt_id": "mixed", "completion": c, "answer": "4"} for c in ("#### 4", "#### 5")]
    rows += [{"prompt_id": "all_wrong", "completion": c, "answer": "4"} for c in ("#### 5", "#### 6")]
    rows += [{"prompt_id": "alone", "completion": "#### 4", "answer": "4"}]
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: {name: exact, extract: [hash]}\nlength_unit: words\n")
    out, summary = tmp_path / "scored.jsonl", tmp_path / "summary.json"
    assert main(["score", str(rollouts), "--spec", str(spec), "-o", str(out), "--summary-json", str(summary)]) == 0
    assert main(["audit", str(out), "--out", str(tmp_path / "audit")]) == 0
    scored = json.loads(summary.read_text())
    audited = json.loads((tmp_path / "audit" / "audit.json").read_text())["metrics"]["zero_variance_groups"]
    assert scored["zero_variance_groups"] == audited["zero_variance"] == 2
    assert scored["single_rollout_groups"] == audited["single_rollout_groups"] == 1
    assert len(read_records(out).records) == len(rows)
