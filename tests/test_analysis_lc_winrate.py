import json

import numpy as np
import pytest

from rewardsmith.analysis.lc_winrate import (Judgement, estimate_difficulty, length_controlled_win_rate, length_controlled_win_rates,
                                           parse_judgement, raw_win_rate, read_judgements)
from rewardsmith.cli import main
from rewardsmith.records import RecordError


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def length_loving_judge(seed=0, n=600):
    """Model outputs ~300 chars longer (sometimes shorter); the judge prefers the longer output
    whatever its quality: P(model wins) = sigmoid(2.5·tanh(Δlen/300))."""
    rng = np.random.default_rng(seed)
    base = rng.normal(800, 200, n).clip(50)
    model = (base + rng.normal(300, 300, n)).clip(50)
    wins = (rng.random(n) < sigmoid(2.5 * np.tanh((model - base) / 300))).astype(float)
    return [Judgement(f"q{i}", "verbose", wins[i], int(model[i]), int(base[i])) for i in range(n)]


def quality_judge(seed=0, n=600):
    """The model is better on 80% of instructions, lengths independent of quality; 10% ties."""
    rng = np.random.default_rng(seed)
    base = rng.normal(800, 200, n).clip(50)
    model = rng.normal(800, 200, n).clip(50)
    pref = (rng.random(n) < 0.8).astype(float)
    pref[rng.random(n) < 0.1] = 0.5
    return [Judgement(f"q{i}", "good", pref[i], int(model[i]), int(base[i])) for i in range(n)]


def test_raw_win_rate_counts_ties_as_half():
    js = [Judgement("a", "m", 1.0, 1, 1), Judgement("b", "m", 0.5, 1, 1), Judgement("c", "m", 0.0, 1, 1), Judgement("d", "m", 1.0, 1, 1)]
    r = raw_win_rate(js)
    assert r["win_rate"] == pytest.approx(62.5) and (r["wins"], r["ties"], r["losses"]) == (2, 1, 1)
    assert r["standard_error"] == pytest.approx(100 * np.std([1, 0.5, 0, 1], ddof=1) / 2)


def test_length_loving_judge_lc_removes_the_gap():
    r = length_controlled_win_rate(length_loving_judge())
    assert r["win_rate"] > 70
    assert abs(r["lc_win_rate"] - 50) < 6, r
    assert r["win_rate"] - r["lc_win_rate"] > 0.75 * (r["win_rate"] - 50)
    assert r["phi"] > 1.0  # the fitted length effect carries the preference


def test_quality_judge_lc_keeps_the_win_rate():
    r = length_controlled_win_rate(quality_judge())
    assert r["win_rate"] > 70
    assert abs(r["lc_win_rate"] - r["win_rate"]) < 3, r
    assert abs(r["phi"]) < 0.3


def test_gamed_baseline_rows_pin_the_length_effect():
    """The model is better (true LC = 100·sigmoid(1) = 73.1) *and* always ~600 chars longer, so θ and
    φ are confounded: alone, the GLM blames length for nearly everything. Baseline-vs-own
    verbose/concise judgements (weight 0.2, as in AlpacaEval) identify φ and recover θ."""
    rng = np.random.default_rng(1)
    n = 600
    base = rng.normal(800, 100, n)
    model = base + rng.normal(600, 60, n)
    judge = lambda quality, d: sigmoid(quality + 2.5 * np.tanh(d / 300))
    js = [Judgement(f"q{i}", "better_and_longer", float(rng.random() < judge(1.0, model[i] - base[i])), int(model[i]), int(base[i])) for i in range(n)]
    confounded = length_controlled_win_rate(js)
    for variant, shift in (("base_verbose", 500), ("base_concise", -500)):
        for i in range(n):
            d = shift + rng.normal(0, 150)
            js.append(Judgement(f"q{i}", variant, float(rng.random() < judge(0.0, d)), int(base[i] + d), int(base[i]), gamed_baseline=True))
    r = length_controlled_win_rate(js)
    truth = 100 * sigmoid(1.0)
    assert r["gamed_baseline_rows"] == 2 * n and r["win_rate"] > 90
    assert abs(r["lc_win_rate"] - truth) < 8, r
    assert r["identified"] and not r["problems"]
    # without them the quality effect is lost: tanh(Δlen/sd) ≈ 1 duplicates the model indicator
    assert not confounded["identified"] and confounded["lc_win_rate"] is None
    assert "collinearity" in confounded["problems"][0] and "length" in confounded["problems"][0]


def test_difficulty_is_estimated_from_the_other_models():
    rng = np.random.default_rng(0)
    n_inst = 150
    hardness = rng.normal(0, 1.5, n_inst)
    js = []
    for m, skill in enumerate([0.5, 0.0, -0.5, 1.0]):
        for i in range(n_inst):
            p = sigmoid(skill - hardness[i])
            js.append(Judgement(f"q{i}", f"m{m}", float(rng.random() < p), 500, 500))
    est = estimate_difficulty(js, exclude_model="m0")
    values = np.array([est[f"q{i}"] for i in range(n_inst)])
    assert np.corrcoef(values, -hardness)[0, 1] > 0.6  # the instruction effect is "easiness"
    all_models = length_controlled_win_rates(js)
    assert set(all_models) == {"m0", "m1", "m2", "m3"}
    assert all(r["difficulty"].startswith("estimated") for r in all_models.values())
    # the strongest model keeps the highest LC win rate
    assert max(all_models, key=lambda m: all_models[m]["lc_win_rate"]) == "m3"


def test_explicit_difficulty_takes_precedence_and_single_model_drops_the_term():
    js = length_loving_judge(n=100)
    assert "term dropped" in length_controlled_win_rate(js)["difficulty"]
    given = [Judgement(j.instruction_id, j.model, j.preference, j.len_model, j.len_base, difficulty=float(k % 3)) for k, j in enumerate(js)]
    assert length_controlled_win_rate(given)["difficulty"] == "given in the file"


def test_degenerate_inputs():
    same = [Judgement(f"q{i}", "m", 1.0, 100 + i, 100) for i in range(10)]
    r = length_controlled_win_rate(same)
    assert r["win_rate"] == 100.0 and r["lc_win_rate"] is None and "cannot be fitted" in r["problems"][0]
    equal_lengths = [Judgement(f"q{i}", "m", float(i % 2), 100, 100) for i in range(20)]
    r = length_controlled_win_rate(equal_lengths)
    assert r["phi"] == 0.0 and r["lc_win_rate"] == pytest.approx(50.0, abs=1.0)
    one = length_controlled_win_rate([Judgement("q", "m", 0.5, 10, 20)])
    assert one["lc_win_rate"] == pytest.approx(50.0)
    json.dumps([r, one], allow_nan=False)
    with pytest.raises(ValueError, match="name one"):
        length_controlled_win_rate(same + [Judgement("q", "other", 1.0, 1, 1)])


@pytest.mark.parametrize("fields,expected", [
    ({"preference": 0.25}, 0.25),
    ({"preference_12": 2}, 1.0),
    ({"preference_12": 1}, 0.0),
    ({"preference_12": 1.5}, 0.5),
    ({"preference_12": 0}, 0.5),  # AlpacaEval writes some ties as 0
    ({"winner": "tie"}, 0.5),
    ({"winner": "base"}, 0.0),
])
def test_preference_encodings(fields, expected):
    j = parse_judgement({"instruction_id": 7, "output_model": "abc", "output_base": "a", **fields})
    assert j.preference == expected and j.instruction_id == "7" and (j.len_model, j.len_base) == (3, 1)


@pytest.mark.parametrize("fields,message", [
    ({"preference": 1.5}, "in \\[0, 1\\]"),
    ({"preference_12": 3}, "preference_12"),
    ({"winner": "nobody"}, "winner"),
    ({"preference": 1, "winner": "tie"}, "exactly one"),
    ({}, "exactly one"),
])
def test_bad_judgements_are_errors(fields, message):
    with pytest.raises(RecordError, match=message):
        parse_judgement({"instruction_id": "q", "output_model": "a", "output_base": "b", **fields})


def test_cli_lcwr(tmp_path, capsys):
    path = tmp_path / "judgements.jsonl"
    rows = [{"instruction_id": j.instruction_id, "model": j.model, "output_model": "x" * j.len_model, "output_base": "y" * j.len_base,
             "preference_12": 1.0 + j.preference} for j in length_loving_judge(n=200)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_judgements(path)[0].len_model == rows[0]["output_model"].__len__()
    out = tmp_path / "o"
    assert main(["eval", "lcwr", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LC win rate" in text and str(out / "lcwr.json") in text
    result = json.loads((out / "lcwr.json").read_text())["models"]["verbose"]
    assert result["win_rate"] > result["lc_win_rate"]
    path.write_text('{"instruction_id": "q"}\n')
    assert main(["eval", "lcwr", str(path), "--out", str(out)]) == 2
    assert f"{path}:1" in capsys.readouterr().err
