import json

import numpy as np
import pytest

from rewardsmith.analysis.audit import (
    AuditThresholds,
    audit,
    average_ranks,
    fitted_change,
    pearson,
    repeated_ngram_rate,
    spearman,
    zero_variance_groups,
)
from rewardsmith.analysis.scored import ScoredRollouts
from rewardsmith.cli import main


def synthetic(length_paid: bool, steps: int = 3, prompts: int = 10, n: int = 8, seed: int = 0):
    """GRPO-like scored rollouts: correctness independent of length; with ``length_paid`` the reward
    adds 0.002 per token (a length bonus a policy can farm)."""
    rng = np.random.default_rng(seed)
    records = []
    for s in range(steps):
        for p in range(prompts):
            for _ in range(n):
                tokens = int(rng.integers(40, 400))
                correct = bool(rng.random() < 0.5)
                bonus = 0.002 * tokens if length_paid else 0.0
                words = " ".join(f"w{rng.integers(0, 60)}" for _ in range(tokens // 4))
                records.append(
                    {
                        "prompt_id": f"s{s}p{p}",
                        "completion": f"<think>{words}</think> Answer: 1",
                        "num_tokens": tokens,
                        "step": s,
                        "truncated": False,
                        "reward": float(correct) + bonus,
                        "correct": correct,
                        "components": {
                            "correctness": float(correct),
                            "format": 1.0,
                            **({"length_bonus": bonus} if length_paid else {}),
                        },
                    }
                )
    return records


def flags(result):
    return {f["name"]: f for f in result["flags"]}


# ------------------------------------------------------------------ statistics
def test_correlations_hand_values():
    assert average_ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(0.8)  # 1 - 6·2/(4·15)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 1, 1], [1, 2, 3]) is None and spearman([5], [5]) is None


def test_correlations_agree_with_scipy_on_tied_data():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, 200).astype(float)  # many ties
    y = x * 0.3 + rng.normal(0, 1, 200).round(1)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_repeated_ngram_rate_and_fitted_change():
    assert repeated_ngram_rate("a b a b a b", ngram=2) == pytest.approx(0.6)  # 5 bigrams, 2 distinct
    assert repeated_ngram_rate("a b", ngram=3) == 0.0
    assert repeated_ngram_rate("the cat sat on a mat", ngram=3) == 0.0
    assert fitted_change(np.array([0, 1, 2, 3]), np.array([0.0, 0.1, 0.2, 0.3])) == pytest.approx(0.3)
    assert fitted_change(np.array([5]), np.array([1.0])) is None


def test_zero_variance_groups_counts_reasons():
    reward = np.array([1, 1, 0, 0, 1, 0, 0.5, 0.5, 7])
    correct = np.array([1, 1, 0, 0, 1, 0, np.nan, np.nan, 1])
    group = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4])
    zv = zero_variance_groups(reward, correct, group, 5)
    assert zv["groups_of_2_or_more"] == 4 and zv["single_rollout_groups"] == 1
    assert zv["zero_variance"] == 3 and zv["share"] == pytest.approx(0.75)
    assert zv["all_correct"] == 1 and zv["all_wrong"] == 1


# ------------------------------------------------------------------ the audit
def test_length_paid_reward_raises_the_flag():
    result = audit(ScoredRollouts.from_records(synthetic(length_paid=True)))
    f = flags(result)["length_hacking"]
    assert f["raised"] and f["value"] > 0.9
    corr = result["metrics"]["reward_length_correlation"]
    assert corr["correct"]["spearman"] > 0.9 and corr["incorrect"]["pearson"] > 0.9
    assert result["metrics"]["components"]["length_bonus"]["mean"] > 0


def test_correctness_only_reward_does_not_raise_it():
    result = audit(ScoredRollouts.from_records(synthetic(length_paid=False)))
    f = flags(result)["length_hacking"]
    assert not f["raised"] and f["value"] == 0.0  # constant reward within each stratum
    assert not any(fl["raised"] for fl in result["flags"]), [fl for fl in result["flags"] if fl["raised"]]


def test_noisy_reward_independent_of_length_is_not_flagged():
    rng = np.random.default_rng(1)
    records = synthetic(length_paid=False)
    for r in records:
        r["reward"] += float(rng.normal(0, 0.1))
    f = flags(audit(ScoredRollouts.from_records(records)))["length_hacking"]
    assert not f["raised"] and abs(f["value"]) < 0.3


def test_zero_variance_truncation_repetition_and_format_flags():
    records = []
    for p in range(10):
        for k in range(4):
            loop = p < 3  # 30% degenerate loops
            text = "<think>" + ("again " * 40 if loop else " ".join(f"t{p}{k}{i}" for i in range(40))) + "</think> 1"
            correct = p < 8  # prompts 0-7 all correct, 8-9 all wrong: every group flat
            records.append(
                {
                    "prompt_id": f"q{p}",
                    "completion": text,
                    "num_tokens": 100 + k,
                    "truncated": k == 0,
                    "reward": float(correct),
                    "correct": correct,
                    "format_ok": not (correct and k == 1),
                }
            )
    result = audit(ScoredRollouts.from_records(records), by="step")
    f = flags(result)
    assert f["zero_variance_groups"]["raised"] and f["zero_variance_groups"]["value"] == 1.0
    assert result["metrics"]["zero_variance_groups"]["all_correct"] == 8
    assert f["truncation"]["raised"] and f["truncation"]["value"] == pytest.approx(0.25)
    assert f["repetition"]["raised"] and f["repetition"]["value"] == pytest.approx(0.3)
    assert f["format_rejects_correct"]["raised"] and f["format_rejects_correct"]["value"] == pytest.approx(0.25)
    fmt = result["metrics"]["format"]
    assert fmt["fail_but_correct"] == 8 and fmt["pass_but_wrong"] == 8
    # no steps: the trend checks are not evaluated, and say so
    for name in ("format_outpaces_accuracy", "reward_without_accuracy"):
        assert not f[name]["raised"] and f[name]["value"] is None and "not evaluated" in f[name]["explanation"]


def test_reward_rising_without_accuracy_and_format_outpacing():
    rng = np.random.default_rng(0)
    records = []
    for step in range(6):
        for p in range(8):
            for _ in range(4):
                correct = bool(rng.random() < 0.5)
                fmt_ok = rng.random() < 0.2 + 0.15 * step
                reward = float(correct) + 0.5 * fmt_ok
                records.append(
                    {
                        "prompt_id": f"s{step}q{p}",
                        "completion": "x y z",
                        "num_tokens": 10,
                        "step": step,
                        "reward": reward,
                        "correct": correct,
                        "format_ok": bool(fmt_ok),
                    }
                )
    result = audit(ScoredRollouts.from_records(records), by="step")
    f = flags(result)
    assert f["format_outpaces_accuracy"]["raised"], f["format_outpaces_accuracy"]
    assert f["reward_without_accuracy"]["raised"], f["reward_without_accuracy"]
    assert [b["key"] for b in result["buckets"]] == [str(s) for s in range(6)]
    assert result["metrics"]["changes_over_steps"]["format_pass_rate"] > 0.5


def test_thresholds_are_parameters():
    records = synthetic(length_paid=True)
    strict = audit(
        ScoredRollouts.from_records(records), thresholds=AuditThresholds(length_correlation=1.0)
    )  # ρ is exactly 1 here
    assert not flags(strict)["length_hacking"]["raised"]


@pytest.mark.parametrize("case", ["single", "all_correct", "all_wrong", "equal_lengths", "unknown_correct"])
def test_edge_cases_give_json_without_nan(case):
    base = {"completion": "a b c", "num_tokens": 10, "reward": 1.0, "correct": True}
    if case == "single":
        records = [{"prompt_id": "q", **base}]
    elif case == "all_correct":
        records = [{"prompt_id": f"q{i % 3}", **base, "num_tokens": 5 + i} for i in range(30)]
    elif case == "all_wrong":
        records = [
            {"prompt_id": f"q{i % 3}", **base, "reward": 0.0, "correct": False, "num_tokens": 5 + i} for i in range(30)
        ]
    elif case == "equal_lengths":
        records = [
            {"prompt_id": f"q{i % 3}", **base, "reward": float(i % 2), "correct": bool(i % 2)} for i in range(30)
        ]
    else:
        records = [
            {"prompt_id": f"q{i % 3}", **base, "reward": float(i), "correct": None, "num_tokens": 5 + i}
            for i in range(30)
        ]
    result = audit(ScoredRollouts.from_records(records))
    json.dumps(result, allow_nan=False)
    f = flags(result)
    if case == "unknown_correct":  # strata fall back to all rollouts: reward = length order here
        assert f["length_hacking"]["raised"] and "all rollouts" in f["length_hacking"]["explanation"]
    elif case == "single":
        assert f["length_hacking"]["value"] is None
        assert result["metrics"]["zero_variance_groups"]["share"] is None
    else:
        assert not f["length_hacking"]["raised"]


def test_unscored_and_unrewarded_records_are_errors():
    with pytest.raises(ValueError, match="no rollouts"):
        audit(ScoredRollouts.from_records([]))
    with pytest.raises(ValueError, match="rewardsmith score"):
        audit(ScoredRollouts.from_records([{"prompt_id": "a", "completion": "x"}]))
    with pytest.raises(ValueError, match="no 'reward'"):
        audit(ScoredRollouts.from_records([{"prompt_id": "a", "completion": "x", "correct": True}]))


# ------------------------------------------------------------------ CLI
def test_cli_audit_writes_json_and_plots(tmp_path, capsys):
    src = tmp_path / "scored.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in synthetic(length_paid=True)))
    out = tmp_path / "audit"
    assert main(["audit", str(src), "--out", str(out), "--threshold", "truncation_rate=0.5"]) == 0
    text = capsys.readouterr().out
    assert "[FLAG] length_hacking" in text and str(out / "audit.json") in text
    result = json.loads((out / "audit.json").read_text())
    assert result["thresholds"]["truncation_rate"] == 0.5 and result["source"] == str(src)
    for name in ("reward_vs_length.png", "length_histogram.png", "components_by_step.png"):
        assert (out / name).stat().st_size > 5000 and name in result["plots"]


def test_cli_audit_bad_threshold_and_missing_file(tmp_path, capsys):
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"prompt_id": "a", "completion": "x", "reward": 1.0, "correct": True}) + "\n")
    assert main(["audit", str(src), "--threshold", "nope=1", "--out", str(tmp_path / "o")]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "missing.jsonl")]) == 2


def test_cli_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import argparse, sys; from rewardsmith.analysis.cli import register_cli; "
        "register_cli(argparse.ArgumentParser().add_subparsers()); "
        "heavy = [m for m in ('matplotlib', 'sklearn', 'torch', 'scipy') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
