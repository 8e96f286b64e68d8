import json

import pytest

from rewardsmith.analysis.ruler import FM_WINDOWS, PM_WINDOWS, in_window, normalise_target, ruler_scores, word_count
from rewardsmith.analysis.wildbench import apply_length_margin, outcome_value, wb_reward, wb_score
from rewardsmith.cli import main
from rewardsmith.records import RecordError


def pair(outcome, len_model, len_base, **extra):
    return {"outcome": outcome, "output_model": "m" * len_model, "output_base": "b" * len_base, **extra}


# ------------------------------------------------------------------ WB-Reward
def test_wb_reward_without_margin():
    rows = [pair("A++", 10, 10), pair("A+", 10, 10), pair("A=B", 10, 10), pair("B+", 10, 10), pair("B++", 10, 10), pair("much_better", 1, 1)]
    r = wb_reward(rows)
    assert r["reward"] == pytest.approx(100 * (1 + 0.5 + 0 - 0.5 - 1 + 1) / 6)
    assert (r["much_better"], r["better"], r["tie"], r["worse"], r["much_worse"]) == (2, 1, 1, 1, 1)


def test_wb_reward_length_margin_hand_example():
    rows = [
        pair("better", 900, 300),      # slight win, winner longer by 600 > 500 -> tie
        pair("better", 700, 300),      # longer by 400 -> stays +0.5
        pair("better", 300, 900),      # the winner is shorter -> stays +0.5
        pair("worse", 200, 800),       # slight loss, the winning base longer by 600 -> tie
        pair("much_better", 2000, 10),  # "much" outcomes are never converted
        pair("worse", 801, 300),       # the loser is the longer one -> stays -0.5
        pair("better", 801, 300),      # longer by exactly 501 -> tie
        pair("better", 800, 300),      # longer by exactly 500 (not more) -> stays
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


# ------------------------------------------------------------------ WB-Score
def test_wb_score_macro_over_task_groups():
    rows = [{"score": 8, "task_group": "coding"}, {"score": 6, "task_group": "coding"}, {"score": 9, "task_group": "math"}, {"score": 3, "task_group": "writing"}]
    r = wb_score(rows)
    assert r["task_groups"]["coding"]["score"] == pytest.approx((7 - 5) * 20)
    assert r["task_groups"]["math"]["score"] == pytest.approx(80.0) and r["task_groups"]["writing"]["score"] == pytest.approx(-40.0)
    assert r["score"] == pytest.approx((40 + 80 - 40) / 3)  # macro, not the 4-row mean (40.0 - ...)
    with pytest.raises(RecordError):
        wb_score([{"score": 11}])
    assert wb_score([{"score": 5}])["score"] == 0.0


# ------------------------------------------------------------------ Ruler
def test_ruler_windows_are_half_open():
    assert word_count("It's a well-known fact; 3.5 isn't 4!") == 11
    for target, (lo, hi) in PM_WINDOWS.items():
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
        {"target": 80, "completion": words(80)},    # PM and FM
        {"target": 80, "completion": words(95)},    # FM only (60,100]
        {"target": 80, "completion": words(60)},    # neither (60 is not > 60)
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
    wb.write_text("".join(json.dumps(r) + "\n" for r in [pair("A+", 900, 100, model="x"), pair("A++", 10, 10, model="x"),
                                                          {"score": 7, "task_group": "math", "model": "x"}]))
    out = tmp_path / "wb"
    assert main(["eval", "wildbench", str(wb), "--margin", "500", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "WB-Reward" in text and "WB-Score" in text and str(out / "wildbench.json") in text
    result = json.loads((out / "wildbench.json").read_text())
    assert result["wb_reward"]["x"]["reward"] == 50.0 and result["wb_score"]["x"]["score"] == 40.0

    ru = tmp_path / "ruler.jsonl"
    ru.write_text(json.dumps({"target": 10, "completion": words(10)}) + "\n")
    out = tmp_path / "ru"
    assert main(["eval", "ruler", str(ru), "--out", str(out)]) == 0
    assert json.loads((out / "ruler.json").read_text())["all"]["PM"] == 100.0
    ru.write_text(json.dumps({"target": 11, "completion": "x"}) + "\n")
    assert main(["eval", "ruler", str(ru), "--out", str(out)]) == 2
