import json

import numpy as np
import pytest

from rewardsmith.analysis.lc_winrate import (
    Judgement,
    collinear_terms,
    estimate_difficulty,
    is_extreme_change,
    length_controlled_win_rate,
    length_controlled_win_rates,
    parse_judgement,
    raw_win_rate,
    read_judgements,
    separating_direction,
)
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
    js = [
        Judgement("a", "m", 1.0, 1, 1),
        Judgement("b", "m", 0.5, 1, 1),
        Judgement("c", "m", 0.0, 1, 1),
        Judgement("d", "m", 1.0, 1, 1),
    ]
    r = raw_win_rate(js)
    assert r["win_rate"] == pytest.approx(62.5) and (r["wins"], r["ties"], r["losses"]) == (2, 1, 1)
    assert r["standard_error"] == pytest.approx(100 * np.std([1, 0.5, 0, 1], ddof=1) / 2)


def test_length_loving_judge_lc_removes_the_gap():
    r = length_controlled_win_rate(length_loving_judge(), n_boot=0)
    assert r["win_rate"] > 70
    assert abs(r["lc_win_rate"] - 50) < 6, r
    assert r["win_rate"] - r["lc_win_rate"] > 0.75 * (r["win_rate"] - 50)
    assert r["phi"] > 1.0  # the fitted length effect carries the preference


def test_quality_judge_lc_keeps_the_win_rate():
    r = length_controlled_win_rate(quality_judge(), n_boot=0)
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

    def judge(quality, d):
        return sigmoid(quality + 2.5 * np.tanh(d / 300))

    js = [
        Judgement(
            f"q{i}",
            "better_and_longer",
            float(rng.random() < judge(1.0, model[i] - base[i])),
            int(model[i]),
            int(base[i]),
        )
        for i in range(n)
    ]
    confounded = length_controlled_win_rate(js, n_boot=0)
    for variant, shift in (("base_verbose", 500), ("base_concise", -500)):
        for i in range(n):
            d = shift + rng.normal(0, 150)
            js.append(
                Judgement(
                    f"q{i}",
                    variant,
                    float(rng.random() < judge(0.0, d)),
                    int(base[i] + d),
                    int(base[i]),
                    gamed_baseline=True,
                )
            )
    r = length_controlled_win_rate(js, n_boot=0)
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
    all_models = length_controlled_win_rates(js, n_boot=0)
    assert set(all_models) == {"m0", "m1", "m2", "m3"}
    assert all(r["difficulty"].startswith("estimated") for r in all_models.values())
    # the strongest model keeps the highest LC win rate
    assert max(all_models, key=lambda m: all_models[m]["lc_win_rate"]) == "m3"


def test_explicit_difficulty_takes_precedence_and_single_model_drops_the_term():
    js = length_loving_judge(n=100)
    assert "term dropped" in length_controlled_win_rate(js, n_boot=0)["difficulty"]
    given = [
        Judgement(j.instruction_id, j.model, j.preference, j.len_model, j.len_base, difficulty=float(k % 3))
        for k, j in enumerate(js)
    ]
    assert length_controlled_win_rate(given, n_boot=0)["difficulty"] == "given in the file"


def test_degenerate_inputs():
    same = [Judgement(f"q{i}", "m", 1.0, 100 + i, 100) for i in range(10)]
    r = length_controlled_win_rate(same, n_boot=0)
    assert r["win_rate"] == 100.0 and r["lc_win_rate"] is None and "cannot be fitted" in r["problems"][0]
    equal_lengths = [Judgement(f"q{i}", "m", float(i % 2), 100, 100) for i in range(20)]
    r = length_controlled_win_rate(equal_lengths, n_boot=0)
    assert r["phi"] == 0.0 and r["lc_win_rate"] == pytest.approx(50.0, abs=1.0)
    one = length_controlled_win_rate([Judgement("q", "m", 0.5, 10, 20)])
    assert one["lc_win_rate"] == pytest.approx(50.0)
    json.dumps([r, one], allow_nan=False)
    with pytest.raises(ValueError, match="name one"):
        length_controlled_win_rate(same + [Judgement("q", "other", 1.0, 1, 1)])


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"preference": 0.25}, 0.25),
        ({"preference_12": 2}, 1.0),
        ({"preference_12": 1}, 0.0),
        ({"preference_12": 1.5}, 0.5),
        ({"preference_12": 0}, 0.5),  # AlpacaEval writes some ties as 0
        ({"winner": "tie"}, 0.5),
        ({"winner": "base"}, 0.0),
    ],
)
def test_preference_encodings(fields, expected):
    j = parse_judgement({"instruction_id": 7, "output_model": "abc", "output_base": "a", **fields})
    assert j.preference == expected and j.instruction_id == "7" and (j.len_model, j.len_base) == (3, 1)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"preference": 1.5}, "in \\[0, 1\\]"),
        ({"preference_12": 3}, "preference_12"),
        ({"winner": "nobody"}, "winner"),
        ({"preference": 1, "winner": "tie"}, "exactly one"),
        ({}, "exactly one"),
    ],
)
def test_bad_judgements_are_errors(fields, message):
    with pytest.raises(RecordError, match=message):
        parse_judgement({"instruction_id": "q", "output_model": "a", "output_base": "b", **fields})


def test_cli_lcwr(tmp_path, capsys):
    path = tmp_path / "judgements.jsonl"
    rows = [
        {
            "instruction_id": j.instruction_id,
            "model": j.model,
            "output_model": "x" * j.len_model,
            "output_base": "y" * j.len_base,
            "preference_12": 1.0 + j.preference,
        }
        for j in length_loving_judge(n=200)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_judgements(path)[0].len_model == rows[0]["output_model"].__len__()
    out = tmp_path / "o"
    assert main(["eval", "lcwr", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LC win rate" in text and str(out / "lcwr.json") in text
    result = json.loads((out / "lcwr.json").read_text())["models"]["verbose"]
    assert result["win_rate"] > result["lc_win_rate"] and result["identified"]
    low, high = result["lc_interval_95"]
    assert f"{result['lc_win_rate']:.2f} [{low:.1f}, {high:.1f}]" in text and result["bootstrap"]["n_boot"] == 200
    for r in rows:
        r["preference_12"] = 2.0 if len(r["output_model"]) > len(r["output_base"]) else 1.0  # always the longer
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "lcwr", str(path), "--out", str(out), "--n-boot", "0"]) == 0
    text = capsys.readouterr().out
    assert "not identified" in text and "NOT IDENTIFIED: (quasi-)separation" in text
    assert json.loads((out / "lcwr.json").read_text())["models"]["verbose"]["lc_win_rate"] is None
    path.write_text('{"instruction_id": "q"}\n')
    assert main(["eval", "lcwr", str(path), "--out", str(out)]) == 2
    assert f"{path}:1" in capsys.readouterr().err


def noisy_length_judge(n, seed):
    """Verdicts sampled from a length-only probability P(model wins) = sigmoid(2·tanh(Δlen/250)); the model is
    longer on average, so its raw win rate is far above 50 while its length-controlled quality is exactly 50."""
    rng = np.random.default_rng(seed)
    base = rng.normal(700, 150, n).clip(50)
    model = (base + rng.normal(200, 250, n)).clip(50)
    wins = (rng.random(n) < sigmoid(2.0 * np.tanh((model - base) / 250))).astype(float)
    return [Judgement(f"q{i}", "verbose", wins[i], int(model[i]), int(base[i])) for i in range(n)]


def length_blind_quality_judge(n, seed):
    """The model wins with probability sigmoid(0.8) whatever the lengths (independent of quality): LC ≈ raw."""
    rng = np.random.default_rng(seed)
    base, model = rng.normal(700, 150, n).clip(50), rng.normal(800, 150, n).clip(50)
    wins = (rng.random(n) < sigmoid(0.8)).astype(float)
    return [Judgement(f"q{i}", "good", wins[i], int(model[i]), int(base[i])) for i in range(n)]


@pytest.mark.parametrize("n", [200, 800])
def test_synthetic_judges_known_answers_within_the_bootstrap_interval(n):
    """Tolerance = the width of the 95% bootstrap interval (about 4 standard errors): the L1 fit shrinks θ to
    exactly 0 on many resamples, so the percentile interval covers a little below 95% (documented)."""
    verbose = length_controlled_win_rate(noisy_length_judge(n, seed=n), n_boot=100)
    low, high = verbose["lc_interval_95"]
    assert verbose["identified"] and verbose["win_rate"] > 60
    assert abs(verbose["lc_win_rate"] - 50.0) < high - low and low <= verbose["lc_win_rate"] <= high, verbose
    assert verbose["win_rate"] > high  # the raw rate lies beyond the interval: the length bias is removed
    good = length_controlled_win_rate(length_blind_quality_judge(n, seed=n), n_boot=100)
    low_g, high_g = good["lc_interval_95"]
    assert abs(good["lc_win_rate"] - good["win_rate"]) < high_g - low_g, good
    assert abs(good["lc_win_rate"] - 100 * sigmoid(0.8)) < high_g - low_g, good
    assert high - low < (30 if n == 200 else 15)  # the interval narrows with n


def test_bootstrap_interval_is_seeded_and_narrows_with_n():
    small, large = noisy_length_judge(200, seed=1), noisy_length_judge(800, seed=1)
    a = length_controlled_win_rate(small, n_boot=60, seed=3)
    assert a["lc_interval_95"] == length_controlled_win_rate(small, n_boot=60, seed=3)["lc_interval_95"]
    assert a["lc_interval_95"] != length_controlled_win_rate(small, n_boot=60, seed=4)["lc_interval_95"]
    b = length_controlled_win_rate(large, n_boot=60, seed=3)

    def width(r):
        return r["lc_interval_95"][1] - r["lc_interval_95"][0]

    assert width(b) < 0.75 * width(a)
    assert "lc_interval_95" not in length_controlled_win_rate(small, n_boot=0)


def test_a_judge_that_always_picks_the_longer_output_is_reported_not_identified():
    rng = np.random.default_rng(0)
    base, model = rng.normal(700, 150, 300).astype(int), rng.normal(800, 150, 300).astype(int)
    js = [Judgement(f"q{i}", "m", float(model[i] > base[i]), int(model[i]), int(base[i])) for i in range(300)]
    r = length_controlled_win_rate(js)
    assert r["identified"] is False and r["lc_win_rate"] is None and "lc_interval_95" not in r
    assert "separation" in r["problems"][0] and "length (φ)" in r["problems"][0]
    assert r["glm_lc_win_rate"] is not None  # what AlpacaEval would print, kept for the record
    json.dumps(r, allow_nan=False)


def test_separation_detection_by_hand():
    x = np.column_stack([np.linspace(-1, 1, 9), np.zeros(9), np.ones(9)])  # length, difficulty (unused), model
    longer_wins = (x[:, 0] > 0).astype(float)
    direction = separating_direction(x, longer_wins)
    assert direction is not None and direction[0] > 0 and direction[1] == 0.0
    assert np.all(x[longer_wins == 1] @ direction >= -1e-12) and np.all(x[longer_wins == 0] @ direction <= 1e-12)
    one_upset = longer_wins.copy()
    one_upset[[0, 8]] = 1.0 - one_upset[[0, 8]]  # the shortest wins and the longest loses once
    assert separating_direction(x, one_upset) is None
    ties = np.full(9, 0.5)  # a tie constrains x·β = 0: no direction
    assert separating_direction(x, ties) is None


def test_collinearity_and_convergence_failures_are_reported(monkeypatch):
    assert collinear_terms(np.column_stack([np.ones(5), np.ones(5) * 0.999999999, np.zeros(5)])) is not None
    assert collinear_terms(np.column_stack([np.linspace(-1, 1, 5), np.zeros(5), np.ones(5)])) is None
    from sklearn.linear_model import LogisticRegression

    import rewardsmith.analysis.lc_winrate as lcw

    monkeypatch.setattr(
        lcw,
        "_logistic",
        lambda penalty, c: LogisticRegression(C=c, solver="liblinear", fit_intercept=False, max_iter=1, tol=1e-12),
    )
    r = length_controlled_win_rate(noisy_length_judge(200, seed=0), n_boot=0, n_splits=1)
    assert r["lc_win_rate"] is None and any("did not converge" in p for p in r["problems"])


def test_extreme_change_rule_is_alpaca_evals():
    assert is_extreme_change(20, 9.9) and not is_extreme_change(20, 10.1)  # min(20 − 5, 20 − 10) = 10
    assert is_extreme_change(50, 62.6) and not is_extreme_change(50, 62.4)  # max(50 + 12.5, 60) = 62.5


# --- AlpacaEval cross-check on a fixed annotation file (tests/data/lcwr_reference.py regenerates both files) ---

DATA = __import__("pathlib").Path(__file__).parent / "data"


def alpaca_eval_fit_independently(path):
    """AlpacaEval 0.6.6's length_controlled_v1 fit written again from its description, through scikit-learn's own
    LogisticRegressionCV and metadata routing (the route AlpacaEval takes), not rewardsmith's CV loop:
    gamed rows (weight 0.2/2) then the model's rows, each twice (label 1 weight w·p, label 0 weight w·(1−p)),
    GroupKFold(5) with one group per row, CV score −mean over rows of w·CE(p, q), L1 liblinear, random_state 123."""
    import sklearn
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    out = {}
    for model in sorted({r["model"] for r in rows if not r.get("gamed_baseline")}):
        blocks = [([r for r in rows if r["model"] == v], 0.0, 0.1) for v in ("base_concise", "base_verbose")]
        blocks.append(([r for r in rows if r["model"] == model], 1.0, 1.0))
        x, p, w = [], [], []
        for rs, indicator, weight in blocks:
            delta = np.array([len(r["output_base"]) - len(r["output_model"]) for r in rs], dtype=float)
            for r, t in zip(rs, np.tanh(delta / delta.std(ddof=1))):
                x.append([t, r["difficulty"], indicator])
                p.append(1.5 - 1 if r["preference_12"] == 0 else r["preference_12"] - 1)
                w.append(weight)
        x, p, w = np.array(x), np.array(p), np.array(w)
        n = len(p)
        xx, yy = np.vstack([x, x]), np.r_[np.ones(n), np.zeros(n)]
        prob, true_w = np.r_[p, 1 - p], np.r_[w, w]

        def log_loss(y_true, y_pred, true_prob, true_sample_weight):
            target = np.where(y_true == 1, true_prob, 1 - true_prob)
            q = np.clip(y_pred, 1e-15, 1 - 1e-15)
            return -np.mean(true_sample_weight * (target * np.log(q) + (1 - target) * np.log(1 - q)))

        with sklearn.config_context(enable_metadata_routing=True):
            scorer = make_scorer(log_loss, response_method="predict_proba", greater_is_better=False).set_score_request(
                true_prob=True, true_sample_weight=True
            )
            kwargs = dict(solver="liblinear", fit_intercept=False, random_state=123)
            if LogisticRegression().get_params().get("penalty") == "deprecated":
                cv_model = LogisticRegressionCV(
                    cv=GroupKFold(5), scoring=scorer, l1_ratios=(1.0,), use_legacy_attributes=False, **kwargs
                )
            else:
                cv_model = LogisticRegressionCV(cv=GroupKFold(5), scoring=scorer, penalty="l1", **kwargs)
            cv_model.set_fit_request(sample_weight=True)
            cv_model.fit(
                xx,
                yy,
                sample_weight=prob * true_w,
                groups=np.r_[np.arange(n), np.arange(n)],
                true_prob=prob,
                true_sample_weight=true_w,
            )
        own = x[-len(blocks[-1][0]) :]
        test = np.column_stack([np.zeros(len(own)), own[:, 1], own[:, 2]])
        out[model] = 100 * cv_model.predict_proba(test)[:, 1].mean()
    return out


def test_eval_lcwr_equals_alpaca_eval_on_the_fixed_annotation_file():
    recorded = json.loads((DATA / "lcwr_alpaca_eval_reference.json").read_text())
    assert recorded["alpaca_eval"] == "0.6.6" and "lcwr_reference.py alpaca_eval" in recorded["command"]
    js = read_judgements(DATA / "lcwr_annotations.jsonl")
    independent = alpaca_eval_fit_independently(DATA / "lcwr_annotations.jsonl")
    assert set(independent) == set(recorded["models"]) == {"concise_model", "verbose_model"}
    for model, theirs in recorded["models"].items():
        ours = length_controlled_win_rate(js, model=model, n_boot=0)
        assert ours["win_rate"] == pytest.approx(theirs["win_rate"], abs=1e-9)
        assert ours["lc_win_rate"] == pytest.approx(theirs["length_controlled_winrate"], abs=0.1)
        assert independent[model] == pytest.approx(theirs["length_controlled_winrate"], abs=0.1)
        assert ours["lc_win_rate"] == pytest.approx(independent[model], abs=1e-6)  # the same fit, to rounding
