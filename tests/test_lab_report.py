"""One seed's lab report on hand-made results: conclusion logic and tables (the study over seeds is in
test_lab_study.py)."""

import pytest

from rewardsmith.lab.report import (
    conclusion,
    seed_markdown,
    standard_error,
    steps_to_halve_redundancy,
    summary_rows,
)


def _run(acc, tokens, redundant=0.0, guesses=0.0, curve_red=(0.5, 0.3, 0.04)):
    by = {
        "2": {
            "n": 2,
            "accuracy": acc,
            "mean_tokens": tokens,
            "redundant_share": redundant,
            "no_steps_share": guesses,
            "truncated_share": 0.0,
        },
        "3": {
            "n": 2,
            "accuracy": acc,
            "mean_tokens": tokens,
            "redundant_share": redundant,
            "no_steps_share": guesses,
            "truncated_share": 0.0,
        },
    }
    curve = [
        {"step": i + 1, "reward": 1.0, "mean_tokens": tokens, "accuracy": acc, "redundant_share": r}
        for i, r in enumerate(curve_red)
    ]
    sampled = {
        "temperature": 1.0,
        "n": 4,
        "accuracy": acc - 0.1,
        "mean_tokens": tokens + 10,
        "redundant_share": redundant + 0.1,
        "no_steps_share": guesses,
        "truncated_share": 0.0,
    }
    return {
        "sampled": sampled,
        "n": 4,
        "accuracy": acc,
        "mean_tokens": tokens,
        "redundant_share": redundant,
        "no_steps_share": guesses,
        "truncated_share": 0.0,
        "by_difficulty": by,
        "curve": curve,
        "train_seconds": 1.0,
        "spec": {"verifier": "exact"},
        "source": "built-in",
        "samples": [{"prompt": "1+2=", "completion": "####3"}],
    }


def _results():
    from rewardsmith.lab.evaluate import compare_to_baseline, pareto_front

    specs = {
        "correctness": _run(0.9, 40.0, 0.3, curve_red=(0.5, 0.4, 0.3)),
        "kimi": _run(0.89, 20.0),
        "greedy": _run(0.5, 8.0, guesses=0.6),
        "slow": _run(0.7, 30.0),
    }
    for r in specs.values():
        r.update(compare_to_baseline(r, specs["correctness"]))
        r["sampled"].update(compare_to_baseline(r["sampled"], specs["correctness"]["sampled"]))
    base = {k: v for k, v in _run(0.9, 50.0, 0.5).items() if k not in ("curve", "train_seconds", "spec", "source")}
    return {
        "preset": "test",
        "seconds": 12.5,
        "baseline": "correctness",
        "device": "cpu",
        "seed": 0,
        "threads": 2,
        "cpu_count": 2,
        "pareto_front": pareto_front({n: (r["accuracy"], r["mean_tokens"]) for n, r in specs.items()}),
        "necessary_tokens": {"mean_tokens": 14.0, "by_difficulty": {"2": 11.0, "3": 17.0}},
        "base_policy": {**base, "sft_seconds": 3.0, "sft_cached": False, "cache_key": "abc", "sft_final_loss": 0.1},
        "config": {"sft": {}, "rl": {}, "n_test": 4, "max_new_tokens": 64},
        "specs": specs,
    }


def test_conclusion_names_the_best_cut_the_collapse_and_the_loss():
    text = "\n".join(conclusion(_results()))
    assert (
        "Greedy decoding: largest cut with accuracy kept (within 2 points): **kimi** shortened answers by 50% (40.0 → 20.0 tokens)"
        in text
    )
    # sampled: correctness 0.8 / 50 tokens, kimi 0.79 / 30 tokens
    assert (
        "Sampled at temperature 1 (one completion per problem; shows the redundancy greedy decoding hides): largest cut"
        in text
    )
    assert "**kimi** shortened answers by 40% (50.0 → 30.0 tokens)" in text
    assert "-1.0 points" in text
    assert "**greedy** collapsed" in text and "8.0 < 14.0" in text
    assert "without collapsing below the necessary length: **slow**" in text
    assert "alone already shortened answers by 20%" in text
    assert "bare guesses" in text and "**greedy** (60%)" in text
    assert "starting value at GRPO step 3 (greedy), 3 (kimi), 3 (slow); not within the budget: correctness." in text


def test_conclusion_when_nothing_is_kept():
    r = _results()
    for name in ("kimi", "slow"):
        r["specs"][name]["accuracy_change"] = -0.5
    del r["specs"]["greedy"]
    assert any("Greedy decoding: length-shaped specs all lost more than 2" in line for line in conclusion(r))


def test_summary_and_tables():
    r = _results()
    rows = summary_rows(r)
    assert [x["name"] for x in rows] == ["(base policy, no RL)", "correctness", "kimi", "greedy", "slow"]
    assert rows[2]["token_reduction"] == pytest.approx(0.5) and rows[2]["steps_to_halve"] == 3
    assert rows[1]["steps_to_halve"] is None
    md = seed_markdown(r)
    assert "| kimi | 0.890 |" in md and "(necessary steps only) | 11.0 | 17.0 |" in md
    assert "| kimi | 0.790 | 30.0 | -40.0% | -1.0 | 0.10 | 0.00 |" in md


def test_helpers():
    assert standard_error(0.5, 100) == pytest.approx(0.05)
    assert standard_error(1.0, 10) == 0.0 and standard_error(0.5, 0) == 0.0
    assert any("under about 75.0 points is within noise" in line for line in conclusion(_results()))  # 3/n with n = 4
    assert (
        steps_to_halve_redundancy(
            [
                {"step": 1, "redundant_share": 0.4},
                {"step": 2, "redundant_share": 0.21},
                {"step": 3, "redundant_share": 0.2},
            ]
        )
        == 3
    )
    assert steps_to_halve_redundancy([]) is None
    assert steps_to_halve_redundancy([{"step": 1, "redundant_share": 0.0}, {"step": 2, "redundant_share": 0.0}]) is None


def test_smoke_seed_report_draws_no_finding():
    r = {**_results(), "smoke": True}
    text = "\n".join(conclusion(r))
    assert "Best AES" not in text and "Pareto" not in text
    md = seed_markdown(r)
    assert "Smoke test" in md and "Reading of this seed" not in md and "Best AES" not in md
    assert "Best AES" in "\n".join(conclusion(_results()))
