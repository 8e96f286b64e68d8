"""End to end: ``rewardsmith lab --preset tiny`` writes its report, results and plots, with finite
numbers in range, for every built-in spec and a user spec (the effect size is not checked)."""

import json
import math

import pytest
import yaml

from rewardsmith.cli import main
from rewardsmith.lab.specs import DEFAULT_NAMES


@pytest.mark.slow  # trains the lab's policy (SFT, then GRPO per spec)
@pytest.mark.timeout(240)
def test_tiny_preset_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    user_spec = tmp_path / "mine.yaml"
    user_spec.write_text(
        yaml.safe_dump(
            {
                "verifier": {"name": "exact", "extract": ["hash"]},
                "shaping": [{"name": "l1_max", "target": 20}],
                "length_unit": "tokens",
            }
        )
    )
    out = tmp_path / "run"
    assert main(["lab", "--preset", "tiny", "--spec", str(user_spec), "--out", str(out)]) == 0
    for name in ("report.md", "results.json", "accuracy_vs_tokens.png", "by_difficulty.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "seeds" / "0" / "report.md").stat().st_size > 0

    results = json.loads((out / "results.json").read_text())
    assert results["preset"] == "tiny" and results["baseline"] == "correctness" and results["seeds"] == [0]
    assert results["smoke"] is True and results["study"]["recommended"] == [] and results["failures"] == []
    assert math.isfinite(results["seconds"]) and results["seconds"] > 0
    assert list(results["specs"]) == [*DEFAULT_NAMES, "mine"]  # tiny runs the default set (no --only)
    for name, r in results["specs"].items():
        assert 0.0 <= r["accuracy"] <= 1.0, name
        assert 0.0 < r["mean_tokens"] <= 64 + 1, name
        assert set(r["by_difficulty"]) == {str(k) for k in range(2, 8)}
        for level in r["by_difficulty"].values():
            assert 0.0 <= level["accuracy"] <= 1.0 and level["n"] == 8
        for key in ("token_reduction", "accuracy_change", "aes", "redundant_share"):
            assert math.isfinite(r[key]), (name, key)
        curve = results["runs"]["0"]["specs"][name]["curve"]
        assert len(curve) == 2 and all(math.isfinite(c["reward"]) and 0 <= c["accuracy"] <= 1 for c in curve)
    assert results["specs"]["correctness"]["token_reduction"] == 0.0
    errors = results["runs"]["0"]["base_policy"]["necessary_trace_errors"]
    assert (
        errors["n"] == 48
        and 0.0 <= errors["share"] <= 1.0
        and set(errors["by_difficulty"]) == {"2", "3", "4", "5", "6", "7"}
    )
    assert results["base_policy"]["necessary_trace_errors"]["n"] == 48

    report = (out / "report.md").read_text()
    assert "Smoke test" in report and "| correctness |" in report and "mine" in report
    assert "Recommended" not in report and "Best AES" not in report
    printed = capsys.readouterr().out
    assert "correctness" in printed and "report:" in printed

    # the base policy is cached: a second run with a subset loads it instead of training
    out2 = tmp_path / "run2"
    assert main(["lab", "--preset", "tiny", "--only", "kimi", "--out", str(out2)]) == 0
    again = json.loads((out2 / "results.json").read_text())
    assert list(again["specs"]) == ["correctness", "kimi"]
    first, second = results["runs"]["0"]["base_policy"], again["runs"]["0"]["base_policy"]
    assert second["sft_cached"] is True and first["sft_cached"] is False
    assert second["accuracy"] == first["accuracy"]

    # a rerun into the same directory skips the finished (seed, spec) pairs
    assert main(["lab", "--preset", "tiny", "--only", "kimi", "--out", str(out2)]) == 0
    assert "already done" in capsys.readouterr().err


def test_bad_spec_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"verifier": "exact", "shaping": [{"name": "no_such_shaper"}]}))
    assert main(["lab", "--preset", "tiny", "--spec", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "no_such_shaper" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_cuda_requested_without_a_device(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["lab", "--preset", "tiny", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_condition_flags_change_only_their_setting(capsys):
    import argparse
    from dataclasses import replace

    from rewardsmith.lab.cli import with_conditions
    from rewardsmith.lab.presets import PRESETS

    quick = PRESETS["quick"]
    style = quick.sft.style
    flags = dict(
        task=None,
        rl_steps=None,
        rl_lr=None,
        rl_beta=None,
        scale_rewards=None,
        risky_checks=None,
        sft_steps=None,
        verbosity_spread=None,
    )
    assert with_conditions(quick, argparse.Namespace(**flags)) == quick
    p = with_conditions(quick, argparse.Namespace(**{**flags, "rl_steps": 60, "rl_lr": 5e-5, "risky_checks": "skill"}))
    assert (p.rl.steps, p.rl.learning_rate, p.rl.scale_rewards) == (60, 5e-5, quick.rl.scale_rewards)
    assert p.sft.style == replace(style, risky_check_rate=0.9, verbosity_scales_risky=False)
    assert p.sft.steps == quick.sft.steps and p.sft.task == quick.sft.task
    assert with_conditions(quick, argparse.Namespace(**{**flags, "scale_rewards": "none"})).rl.scale_rewards == "none"
    assert with_conditions(quick, argparse.Namespace(**{**flags, "rl_beta": 0.04})).rl == replace(quick.rl, beta=0.04)
    p = with_conditions(quick, argparse.Namespace(**{**flags, "sft_steps": 2400, "risky_checks": "habit"}))
    assert p.sft.steps == 2400 and p.rl == quick.rl
    assert p.sft.style == replace(style, risky_check_rate=0.9, verbosity_scales_risky=True)
    p = with_conditions(quick, argparse.Namespace(**{**flags, "task": "carry", "verbosity_spread": 0.5}))
    assert p.sft.task == "carry" and p.sft.style == replace(style, verbosity_spread=0.5)  # the slip tasks share styles
    assert with_conditions(quick, argparse.Namespace(**{**flags, "risky_checks": "always"})).sft.style == replace(
        style, risky_check_rate=1.0, verbosity_scales_risky=False
    )
    with pytest.raises(ValueError, match="slip tasks"):
        with_conditions(quick, argparse.Namespace(**{**flags, "task": "chain", "risky_checks": "skill"}))
    assert main(["lab", "--preset", "tiny", "--task", "chain", "--risky-checks", "skill"]) == 2
    assert "slip tasks (carry, rounding) only" in capsys.readouterr().err
    assert main(["lab", "--preset", "tiny", "--verbosity-spread", "1.5"]) == 2
    assert "verbosity_spread must be in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lab", "--scale-rewards", "std"])
    with pytest.raises(SystemExit):
        main(["lab", "--rl-beta", "-0.1"])


def test_skill_traces_check_slipped_steps_at_one_rate_whatever_the_verbosity():
    import random

    from rewardsmith.lab.tasks import CarryStyle, annotate, generate_problems, sft_trace

    rates = {}
    for scales in (True, False):
        style = CarryStyle(risky_check_rate=0.9, verbosity_spread=0.5, guess_rate=0.0, verbosity_scales_risky=scales)
        rng, slipped, repaired = random.Random(1), 0, 0
        for p in generate_problems(4000, seed=5):
            a = annotate(sft_trace(p, rng, style))
            slipped += a.slipped_steps
            repaired += a.repair_steps
        rates[scales] = repaired / slipped
    # habit: E[min(1, 0.9·v)], v ~ U(0.5, 1.5) = 0.45·(1/0.81 − 0.25) + 1.5 − 1/0.9 = 0.832; skill: 0.9
    assert abs(rates[True] - 0.832) < 0.015 and abs(rates[False] - 0.9) < 0.02
