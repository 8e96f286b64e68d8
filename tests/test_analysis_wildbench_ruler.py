import json
from pathlib import Path

import numpy as np
import pytest

from rewardsmith.analysis.ruler import FM_WINDOWS, PM_WINDOWS, in_window, normalise_target, ruler_scores, word_count
from rewardsmith.analysis.wildbench import (
    EMPTY_PLACEHOLDER,
    TASK_GROUP_WEIGHTS,
    TRUNCATED_SUFFIX,
    apply_length_margin,
    outcome_value,
    task_groups_of,
    task_macro,
    wb_reward,
    wb_reward_mixture,
    wb_score,
)
from rewardsmith.cli import main
from rewardsmith.records import RecordError


def pair(outcome, len_model, len_base, **extra):
    return {"outcome": outcome, "output_model": "m" * len_model, "output_base": "b" * len_base, **extra}


# ------------------------------------------------------------------ WB-Reward
def test_wb_reward_without_margin():
    rows = [
        pair("A++", 10, 10),
        pair("A+", 10, 10),
        pair("A=B", 10, 10),
        pair("B+", 10, 10),
        pair("B++", 10, 10),
        pair("much_better", 1, 1),
    ]
    r = wb_reward(rows)
    assert r["reward"] == pytest.approx(100 * (1 + 0.5 + 0 - 0.5 - 1 + 1) / 6)
    assert (r["much_better"], r["better"], r["tie"], r["worse"], r["much_worse"]) == (2, 1, 1, 1, 1)


def test_wb_reward_length_margin_hand_example():
    rows = [
        pair("better", 900, 300),  # slight win, winner longer by 600 > 500 -> tie
        pair("better", 700, 300),  # longer by 400 -> stays +0.5
        pair("better", 300, 900),  # the winner is shorter -> stays +0.5
        pair("worse", 200, 800),  # slight loss, the winning base longer by 600 -> tie
        pair("much_better", 2000, 10),  # "much" outcomes are never converted
        pair("worse", 801, 300),  # the loser is the longer one -> stays -0.5
        pair("better", 801, 300),  # longer by exactly 501 -> tie
        pair("better", 800, 300),  # longer by exactly 500 (not more) -> stays
    ]
    r = wb_reward(rows, length_margin=500)
    assert r["converted_to_tie"] == 3
    assert r["reward"] == pytest.approx(100 * (0 + 0.5 + 0.5 + 0 + 1 - 0.5 + 0 + 0.5) / 8)  # 25.0
    assert wb_reward(rows)["reward"] == pytest.approx(100 * (0.5 * 5 - 0.5 * 2 + 1) / 8)


def test_outcome_encodings_and_errors():
    assert outcome_value(-0.5) == -0.5 and outcome_value("B++") == -1.0
    assert apply_length_margin(-0.5, 10, 700, 500) == 0.0 and apply_length_margin(-0.5, 10, 700, None) == -0.5
    with pytest.raises(RecordError):
        outcome_value("A+++")
    with pytest.raises(RecordError):
        outcome_value(0.3)
    with pytest.raises(RecordError, match="output_model"):
        wb_reward([{"outcome": "A+"}], length_margin=10)
    assert wb_reward([{"outcome": "A+"}])["reward"] == 50.0  # texts not needed without a margin
    assert wb_reward([])["reward"] is None


OUTCOME_OF = {"win_much": "A++", "win": "A+", "tie": "A=B", "lose": "B+", "lose_much": "B++"}
LEADERBOARD = json.loads((Path(__file__).parent / "data" / "wildbench_leaderboard_excerpt.json").read_text())


def test_wb_reward_leaderboard_truncation_task_groups_and_macro_hand_example():
    rows = [
        pair("A++", 10, 10, task_groups=["Math", "Coding & Debugging"]),  # WildBench tags map onto the five groups
        pair("A+", 10, 10, task_group="Creative Writing"),
        pair("B++", 10, 10, task_groups=["Reasoning", "Planning"]),  # both map to Planning & Reasoning: counted once
        {"outcome": "A++", "output_model": "m" * 5 + TRUNCATED_SUFFIX, "output_base": "b", "task_group": "Math"},
        {"outcome": "B++", "output_model": "m", "output_base": EMPTY_PLACEHOLDER, "task_group": "Math"},
    ]
    r = wb_reward(rows)
    assert r["n"] == 3 and r["skipped_truncated_or_empty"] == 2
    assert r["reward"] == pytest.approx(100 * (1 + 0.5 - 1) / 5)  # skipped rows stay in the leaderboard's denominator
    groups = {g: v["reward"] for g, v in r["task_groups"].items()}
    assert groups == {
        "Math & Data Analysis": 100.0,
        "Coding & Debugging": 100.0,
        "Creative Tasks": 50.0,
        "Planning & Reasoning": -100.0,
    }
    assert r["task_macro_reward"] == pytest.approx(
        (1 * 100 + 1.25 * 100 + 0.5 * 50 + 1.25 * -100) / 4.75
    )  # Information absent
    plain = wb_reward(rows, conventions="plain")
    assert plain["n"] == 5 and plain["skipped_truncated_or_empty"] == 0
    assert plain["reward"] == pytest.approx(100 * (1 + 0.5 - 1 + 1 - 1) / 5)
    assert plain["task_macro_reward"] == pytest.approx(float(np.mean([100 * (1 + 1 - 1) / 3, 100.0, 50.0, -100.0])))


def test_wb_reward_matches_the_published_leaderboard_numbers():
    """allenai/WildBench's own output (pairwise-haiku-K=-1.json): the overall reward divides by every row (1024) though
    only the counted ones (959 for gpt-4-turbo) enter; the per-group rewards and the weighted task macro."""
    for model, pub in LEADERBOARD["pairwise_haiku_K=-1"].items():
        counted = [pair(OUTCOME_OF[k], 10, 10) for k in OUTCOME_OF for _ in range(pub[k])]
        left_out = [pair("A++", 10, 10) for _ in range(pub["total"] - len(counted))]
        for row in left_out:
            row["output_model"] += TRUNCATED_SUFFIX
        assert wb_reward(counted + left_out)["reward"] == pytest.approx(100 * pub["reward"], abs=1e-9), model
        grouped = [
            pair(OUTCOME_OF[k], 10, 10, task_group=g)
            for g, counts in pub["task_categorized_results"].items()
            for k in OUTCOME_OF
            for _ in range(counts[k])
        ]
        r = wb_reward(grouped)
        for g, reward in pub["task_categorized_rewards"].items():
            assert r["task_groups"][g]["reward"] == pytest.approx(100 * reward, abs=1e-9)
        assert r["task_macro_reward"] == pytest.approx(100 * pub["task_macro_reward"], abs=1e-9), model


def test_wb_score_matches_the_published_task_macro():
    for model, pub in LEADERBOARD["score"].items():
        macro = task_macro({g: 10 * v for g, v in pub["task_categorized_scores"].items()}, "leaderboard")
        assert macro == pytest.approx(10 * pub["adjusted_task_macro_score"], abs=1e-9), model
    assert TASK_GROUP_WEIGHTS == {
        "Creative Tasks": 0.5,
        "Planning & Reasoning": 1.25,
        "Math & Data Analysis": 1.0,
        "Information/Advice seeking": 0.75,
        "Coding & Debugging": 1.25,
    }


def test_wb_reward_mixture_over_baselines_and_margin_after_skipping():
    rows = [
        pair("A+", 900, 100, baseline="haiku", task_group="Math"),
        pair("A++", 10, 10, baseline="haiku", task_group="Math"),
        pair("B+", 10, 10, baseline="llama", task_group="Planning"),
    ]
    mix = wb_reward_mixture(rows, length_margin=500)
    assert set(mix["baselines"]) == {"haiku", "llama"}
    assert mix["baselines"]["haiku"]["reward"] == 50.0 and mix["baselines"]["haiku"]["converted_to_tie"] == 1
    assert mix["mixture_of_rewards"] == pytest.approx((50.0 - 50.0) / 2)
    assert mix["task_macro_reward"] == pytest.approx((1.0 * 50 / 4.75 + 1.25 * -50 / 4.75) / 2)
    assert wb_reward_mixture([])["task_macro_reward"] is None


def test_marking_losses_truncated_games_the_leaderboard_task_macro_and_is_visible():
    """Inherited from the leaderboard: a pair whose output ends with '... (truncated)' leaves every task group, so a
    model that marks its losing outputs so lifts its task-macro reward; the skipped count shows it, plain closes it."""
    honest = [pair("A+", 10, 10, task_group="Math") for _ in range(3)] + [pair("B++", 10, 10, task_group="Math")]
    gamed = honest[:3] + [pair("B++", 10, 10, task_group="Math")]
    gamed[3]["output_model"] += TRUNCATED_SUFFIX
    assert wb_reward(gamed)["task_macro_reward"] > wb_reward(honest)["task_macro_reward"]
    assert wb_reward(gamed)["skipped_truncated_or_empty"] == 1
    assert (
        wb_reward(gamed, conventions="plain")["task_macro_reward"]
        == wb_reward(honest, conventions="plain")["task_macro_reward"]
    )


def test_task_group_errors():
    with pytest.raises(RecordError, match="unknown task group"):
        task_groups_of({"task_group": "coding"})
    assert task_groups_of({"task_group": "coding"}, "plain") == ["coding"]
    with pytest.raises(RecordError, match="list of strings"):
        task_groups_of({"task_groups": [1]})
    with pytest.raises(ValueError, match="conventions"):
        wb_score([], conventions="mine")


# ------------------------------------------------------------------ WB-Score
def test_wb_score_leaderboard_weights_and_truncation_hand_example():
    rows = [
        {"score": 8, "task_group": "Coding & Debugging"},
        {"score": 6, "task_groups": ["Math", "Coding & Debugging"]},
        {"score": 2, "task_group": "Math", "output": "text" + TRUNCATED_SUFFIX},  # in the overall mean only
        {"score": 4, "task_group": "Creative Tasks", "output": ""},
    ]
    r = wb_score(rows)
    assert r["score"] == pytest.approx((np.mean([8, 6, 2, 4]) - 5) * 20) and r["skipped_truncated_or_empty"] == 2
    assert r["task_groups"]["Coding & Debugging"]["score"] == pytest.approx(40.0)
    assert (
        r["task_groups"]["Math & Data Analysis"]["score"] == pytest.approx(20.0)
        and "Creative Tasks" not in r["task_groups"]
    )
    assert r["task_macro_score"] == pytest.approx((1.25 * 40 + 1.0 * 20) / 4.75)
    plain = wb_score(rows, conventions="plain")
    assert plain["task_groups"]["Math & Data Analysis"]["score"] == pytest.approx(-20.0)
    assert plain["task_macro_score"] == pytest.approx(np.mean([40.0, -20.0, -20.0]))


def test_wb_score_plain_macro_over_task_groups():
    rows = [
        {"score": 8, "task_group": "coding"},
        {"score": 6, "task_group": "coding"},
        {"score": 9, "task_group": "math"},
        {"score": 3, "task_group": "writing"},
    ]
    r = wb_score(rows, conventions="plain")
    assert r["task_groups"]["coding"]["score"] == pytest.approx((7 - 5) * 20)
    assert r["task_groups"]["math"]["score"] == pytest.approx(80.0) and r["task_groups"]["writing"][
        "score"
    ] == pytest.approx(-40.0)
    assert r["task_macro_score"] == pytest.approx((40 + 80 - 40) / 3)  # macro, not the 4-row mean
    assert r["score"] == pytest.approx((6.5 - 5) * 20)
    with pytest.raises(RecordError):
        wb_score([{"score": 11}])
    assert wb_score([{"score": 5}])["score"] == 0.0 and wb_score([{"score": 5}])["task_macro_score"] is None


# ------------------------------------------------------------------ Ruler
def test_ruler_windows_are_half_open():
    assert word_count("It's a well-known fact; 3.5 isn't 4!") == 11
    for lo, hi in PM_WINDOWS.values():
        assert not in_window(int(lo), (lo, hi)) and in_window(int(lo) + 1, (lo, hi))
        if hi != float("inf"):
            assert in_window(int(hi), (lo, hi)) and not in_window(int(hi) + 1, (lo, hi))
    assert FM_WINDOWS["80"] == (60, 100) and PM_WINDOWS["80"] == (70, 90)
    assert normalise_target(150) == "150" and normalise_target("> 800") == ">800" and normalise_target(30.0) == "30"
    with pytest.raises(RecordError, match="allowed"):
        normalise_target(100)


def words(n):
    return " ".join(["w"] * n)


def test_ruler_scores_hand_example():
    rows = [
        {"target": 80, "completion": words(80)},  # PM and FM
        {"target": 80, "completion": words(95)},  # FM only (60,100]
        {"target": 80, "completion": words(60)},  # neither (60 is not > 60)
        {"TargetLength": "10", "output": words(0)},  # neither: (0, 20]
        {"meta": {"target": ">800"}, "completion": words(900)},  # both
        {"target": 300, "completion": words(250)},  # FM only (200,400]
    ]
    r = ruler_scores(rows)
    t80 = r["targets"]["80"]
    assert t80["n"] == 3 and t80["PM"] == pytest.approx(100 / 3) and t80["FM"] == pytest.approx(200 / 3)
    assert r["targets"]["10"]["PM"] == 0.0 and r["targets"][">800"]["FM"] == 100.0
    level0 = r["levels"]["0"]  # targets 10, 30, 50, 80 pooled
    assert level0["n"] == 4 and level0["PM"] == pytest.approx(25.0) and level0["FM"] == pytest.approx(50.0)
    assert r["levels"]["1"] == {"n": 1, "PM": 0.0, "FM": 100.0} and r["levels"]["2"]["PM"] == 100.0
    assert r["all"]["n"] == 6 and r["all"]["PM"] == pytest.approx(200 / 6) and r["all"]["FM"] == pytest.approx(400 / 6)
    assert r["targets"]["80"]["mean_words"] == pytest.approx((80 + 95 + 60) / 3)


def test_ruler_errors_name_the_row():
    with pytest.raises(RecordError, match="row 1: missing the target"):
        ruler_scores([{"target": 10, "completion": "a"}, {"completion": "b"}])
    with pytest.raises(RecordError, match="row 0: missing 'completion'"):
        ruler_scores([{"target": 10}])


# ------------------------------------------------------------------ CLI
def test_cli_wildbench_and_ruler(tmp_path, capsys):
    wb = tmp_path / "wb.jsonl"
    wb.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                pair("A+", 900, 100, model="x"),
                pair("A++", 10, 10, model="x"),
                {"score": 7, "task_group": "Math", "model": "x"},
            ]
        )
    )
    out = tmp_path / "wb"
    assert main(["eval", "wildbench", str(wb), "--margin", "500", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "WB-Reward" in text
        and "WB-Score" in text
        and "task-macro WB-Reward (ranking)" in text
        and str(out / "wildbench.json") in text
    )
    assert "conventions: leaderboard" in text
    result = json.loads((out / "wildbench.json").read_text())
    assert result["wb_reward"]["x"]["baselines"]["base"]["reward"] == 50.0 and result["wb_score"]["x"]["score"] == 40.0
    assert result["wb_score"]["x"]["task_macro_score"] == pytest.approx(40.0 / 4.75)
    wb.write_text(json.dumps({"score": 7, "task_group": "math"}) + "\n")
    assert main(["eval", "wildbench", str(wb), "--out", str(out)]) == 2
    assert "unknown task group" in capsys.readouterr().err
    assert main(["eval", "wildbench", str(wb), "--conventions", "plain", "--out", str(out)]) == 0
    assert json.loads((out / "wildbench.json").read_text())["wb_score"]["model"]["task_macro_score"] == 40.0

    ru = tmp_path / "ruler.jsonl"
    ru.write_text(json.dumps({"target": 10, "completion": words(10)}) + "\n")
    out = tmp_path / "ru"
    assert main(["eval", "ruler", str(ru), "--out", str(out)]) == 0
    assert json.loads((out / "ruler.json").read_text())["all"]["PM"] == 100.0
    ru.write_text(json.dumps({"target": 11, "completion": "x"}) + "\n")
    assert main(["eval", "ruler", str(ru), "--out", str(out)]) == 2
