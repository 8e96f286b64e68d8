import json
import math

import numpy as np
import pytest

from rewardsmith.analysis.scored import NotScoredError, ScoredRollouts
from rewardsmith.analysis.tradeoff import (
    accuracy_per_1k,
    aes,
    compare_runs,
    pareto_front,
    pass_at_k,
    pass_at_k_over_prompts,
    run_summary,
    token_reduction,
)
from rewardsmith.cli import main


def rec(pid, correct, tokens, difficulty=None, **extra):
    r = {
        "prompt_id": pid,
        "completion": "w " * 3,
        "num_tokens": tokens,
        "reward": float(bool(correct)),
        "correct": correct,
    }
    if difficulty is not None:
        r["meta"] = {"difficulty": difficulty}
    return {**r, **extra}


# ------------------------------------------------------------------ pass@k
@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 1, 0.4),  # c/n
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (4, 1, 3, 1 - 1 / 4),  # 1 - C(3,3)/C(4,3)
        (10, 0, 5, 0.0),
        (10, 10, 5, 1.0),
        (4, 2, 3, 1.0),  # n - c < k: every k-subset holds a correct one
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomials_and_is_stable_for_large_n():
    for n, c, k in [(20, 3, 4), (50, 7, 10), (100, 1, 50)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)
    value = pass_at_k(5000, 3, 100)  # C(5000, 100) overflows a float
    assert 0 < value < 1 and math.isfinite(value)
    assert value == pytest.approx(1 - math.comb(4997, 100) / math.comb(5000, 100), rel=1e-9)


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (3, 4, 1), (3, 1, 0)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_pass_at_k_over_prompts_skips_unknown_and_small_groups():
    correct = np.array([1, 0, np.nan, 1, 1, 0])
    group = np.array([0, 0, 0, 1, 1, 2])
    # k=1: prompt 0 -> 1/2 (NaN left out), prompt 1 -> 1, prompt 2 -> 0
    assert pass_at_k_over_prompts(correct, group, 3, 1) == (pytest.approx((0.5 + 1.0 + 0.0) / 3), 3)
    # k=2: prompt 2 has one rollout -> left out; prompt 0: 1 - C(1,2)/C(2,2) = 1
    assert pass_at_k_over_prompts(correct, group, 3, 2) == (pytest.approx(1.0), 2)
    assert pass_at_k_over_prompts(np.array([np.nan, np.nan]), np.array([0, 0]), 1, 1) == (None, 0)


# ------------------------------------------------------------------ AES, reduction, per 1k, Pareto
def test_aes_hand_values():
    assert aes(0.9, 50, 0.9, 100) == pytest.approx(0.5)  # α·0.5
    assert aes(0.99, 80, 0.9, 100) == pytest.approx(0.2 + 3 * 0.1)  # ΔAcc = +10%
    assert aes(0.81, 80, 0.9, 100) == pytest.approx(0.2 - 5 * 0.1)  # ΔAcc = -10%
    assert aes(0.81, 80, 0.9, 100, alpha=2, gamma=1) == pytest.approx(0.4 - 0.1)
    assert aes(0.2, 100, 0.0, 100) == pytest.approx(3 * 0.2)  # base accuracy 0: absolute change
    assert aes(0.5, 10, 0.5, 0) == 0.0  # base length 0: ΔL = 0


def test_token_reduction_and_accuracy_per_1k():
    assert token_reduction(300, 1000) == pytest.approx(0.7)
    assert token_reduction(1200, 1000) == pytest.approx(-0.2)
    assert token_reduction(5, 0) is None
    assert accuracy_per_1k(0.6, 300) == pytest.approx(2.0)
    assert accuracy_per_1k(0.6, 0) is None


def test_pareto_front_hand_example():
    pts = {
        "a": (0.8, 1000.0),
        "b": (0.8, 600.0),
        "c": (0.7, 300.0),
        "d": (0.6, 400.0),
        "e": (0.9, 2000.0),
        "f": (0.7, 300.0),
    }
    # a is dominated by b (same accuracy, shorter); d by c; c and f are identical (both kept)
    assert pareto_front(pts) == ["c", "f", "b", "e"]
    assert pareto_front({"only": (0.1, 5.0)}) == ["only"]
    assert pareto_front({}) == []


# ------------------------------------------------------------------ runs
def test_run_summary_by_difficulty_and_unknowns():
    records = [
        rec("q1", True, 100, "easy"),
        rec("q1", True, 200, "easy"),
        rec("q2", False, 400, "hard"),
        rec("q2", None, 600, "hard"),
        rec("q3", True, 50, None),
    ]
    s = run_summary(ScoredRollouts.from_records(records), ks=(1, 2))
    assert s["unit"] == "tokens" and s["rollouts"] == 5 and s["prompts"] == 3 and s["unknown_correct"] == 1
    assert s["pass@1"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert s["pass@2"] == pytest.approx(1.0) and s["pass@2_prompts"] == 1
    assert s["mean_length"] == pytest.approx(270.0) and s["median_length"] == pytest.approx(200.0)
    easy, hard, unknown = (s["breakdown"][k] for k in ("easy", "hard", "unknown"))
    assert easy["pass@1"] == 1.0 and easy["mean_length"] == 150.0
    assert hard["pass@1"] == 0.0 and hard["median_length"] == 500.0 and hard["unknown_correct"] == 1
    assert unknown["rollouts"] == 1


def test_words_when_no_token_counts_and_data_source_fallback():
    records = [
        {"prompt_id": "a", "completion": "one two three", "reward": 1.0, "correct": True, "data_source": "gsm8k"},
        {"prompt_id": "a", "completion": "one", "reward": 0.0, "correct": False, "data_source": "gsm8k"},
    ]
    s = run_summary(ScoredRollouts.from_records(records))
    assert s["unit"] == "words" and s["mean_length"] == 2.0 and list(s["breakdown"]) == ["gsm8k"]


def test_compare_runs_baseline_aes_and_front():
    base = [rec(f"q{i}", i % 2 == 0, 1000) for i in range(4)]  # acc 0.5, 1000 tokens
    short = [rec(f"q{i}", i % 2 == 0, 500) for i in range(4)]  # acc 0.5, 500 tokens
    worse = [rec(f"q{i}", i == 0, 800) for i in range(4)]  # acc 0.25, 800 tokens
    result = compare_runs(
        {n: ScoredRollouts.from_records(r) for n, r in [("base", base), ("short", short), ("worse", worse)]},
        baseline="base",
    )
    runs = result["runs"]
    assert runs["short"]["token_reduction"] == pytest.approx(0.5) and runs["short"]["aes"] == pytest.approx(0.5)
    assert runs["worse"]["accuracy_change"] == pytest.approx(-0.25)
    assert runs["worse"]["aes"] == pytest.approx(0.2 - 5 * 0.5)
    assert runs["base"]["aes"] == 0.0 and runs["short"]["accuracy_per_1k"] == pytest.approx(1.0)
    assert result["pareto_front"] == ["short"]
    json.dumps(result, allow_nan=False)


def test_compare_runs_rejects_mixed_units_and_unknown_baseline():
    tokens = ScoredRollouts.from_records([rec("a", True, 10)])
    words = ScoredRollouts.from_records([{"prompt_id": "a", "completion": "x y", "reward": 1.0, "correct": True}])
    with pytest.raises(ValueError, match="different units"):
        compare_runs({"t": tokens, "w": words})
    with pytest.raises(ValueError, match="baseline"):
        compare_runs({"t": tokens}, baseline="nope")


def test_unscored_records_are_an_error():
    with pytest.raises(NotScoredError, match="rewardsmith score"):
        run_summary(ScoredRollouts.from_records([{"prompt_id": "a", "completion": "x", "num_tokens": 3}]))


def test_all_unknown_correctness_gives_none_not_nan():
    s = compare_runs({"r": ScoredRollouts.from_records([rec("a", None, 10), rec("a", None, 20)])})
    assert s["runs"]["r"]["pass@1"] is None and s["pareto_front"] == []
    json.dumps(s, allow_nan=False)


# ------------------------------------------------------------------ CLI
def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_cli_tradeoff_writes_json_and_plots(tmp_path, capsys):
    rng = np.random.default_rng(0)

    def run(acc, tokens):
        return [
            rec(f"q{p}", bool(rng.random() < acc), int(tokens * (1 + d)), ["easy", "hard"][d])
            for p in range(10)
            for d in (p % 2,)
            for _ in range(4)
        ]

    base = _write(tmp_path / "base.jsonl", run(0.7, 800))
    short = _write(tmp_path / "short.jsonl", run(0.7, 300))
    out = tmp_path / "out"
    assert (
        main(["eval", "tradeoff", str(short), f"base={base}", "--baseline", "base", "--k", "1", "2", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "pass@2" in text and "Pareto front" in text and str(out / "tradeoff.json") in text
    result = json.loads((out / "tradeoff.json").read_text())
    assert set(result["runs"]) == {"base", "short"} and result["baseline"] == "base"
    assert result["runs"]["short"]["token_reduction"] > 0.5
    for name in ("pareto.png", "by_difficulty.png"):
        assert (out / name).stat().st_size > 5000


def test_cli_tradeoff_bad_k_is_a_message(tmp_path, capsys):
    f = _write(tmp_path / "r.jsonl", [rec("a", True, 3)])
    with pytest.raises(SystemExit) as exc:  # a usage error, before any file is read
        main(["eval", "tradeoff", str(f), "--k", "0", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "argument --k: must be at least 1" in capsys.readouterr().err
