"""cosine, dapo_overlong, truncation, budget_curriculum: hand-computed values, edge cases, and
cross-checks against TRL's cosine reward and soft overlong punishment on the same inputs."""

import numpy as np
import pytest

from _shaping import make_ctx, recs, run
from rewardsmith import SpecError, load_spec
from rewardsmith.shaping import BaseValues

LASER_BASE = BaseValues(1.0, -0.5, -1.0)


# --------------------------------------------------------------------------- cosine
def test_cosine_defaults_hand_computed():
    ctx = make_ctx([0, 50, 100, 200, 0, 50, 100], [1, 1, 1, 1, 0, 0, 0])
    new, comp = run("cosine", ctx, max_len=100, exceed_penalty=None)
    # correct 1.0 -> 0.5 over [0, max_len], wrong -1.0 -> -0.5; clamped past max_len
    assert comp.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.5, -1.0, -0.75, -0.5])
    assert new.tolist() == pytest.approx(comp.tolist())
    # the default, as the authors' code: L >= max_len - 16 scores 0 whatever the answer
    _, comp = run("cosine", ctx, max_len=100)
    assert comp.tolist() == pytest.approx([1.0, 0.75, 0.0, 0.0, -1.0, -0.75, 0.0])


def test_cosine_margin_that_swallows_every_length_is_refused():
    with pytest.raises(SpecError, match=r"exceed_margin \(16\) >= max_len \(4.0\)"):
        load_spec({"verifier": "exact", "shaping": [{"name": "cosine", "max_len": 4}]})
    load_spec({"verifier": "exact", "shaping": [{"name": "cosine", "max_len": 4, "exceed_penalty": None}]})


def test_cosine_paper_values_exceed_penalty_and_margin():
    opts = dict(
        max_len=100,
        min_value_correct=1.0,
        max_value_correct=2.0,
        min_value_wrong=-10.0,
        max_value_wrong=0.0,
        exceed_penalty=-10.0,
    )
    _, comp = run("cosine", make_ctx([50, 50, 83, 84, 84], [1, 0, 1, 1, 0]), **opts)
    assert comp.tolist() == pytest.approx([1.5, -5.0, 1.0 + 0.5 * (1 + np.cos(np.pi * 0.83)), -10.0, -10.0])
    _, comp = run("cosine", make_ctx([95, 96], [1, 1]), **{**opts, "exceed_margin": 4})
    assert comp[1] == -10.0 and comp[0] > 1.0


def test_cosine_replaces_only_the_base_and_leaves_unknown_alone():
    # reward = base + 0.25 (say a format bonus); an unknown verdict keeps its reward
    ctx = make_ctx([50, 50, 50], [1, 0, None], reward=[1.25, 0.25, 0.25])
    new, comp = run("cosine", ctx, max_len=100)
    assert new.tolist() == pytest.approx([1.0, -0.5, 0.25])
    assert comp.tolist() == pytest.approx([0.75, -0.75, 0.0])


def test_cosine_matches_trl_on_the_same_inputs(monkeypatch):
    import trl.rewards.accuracy_rewards as trl_acc

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 1500, size=200)
    correct = rng.random(200) < 0.5
    # TRL decides correctness with math-verify; feed it ours so only the length maths is compared
    monkeypatch.setattr(trl_acc, "accuracy_reward", lambda completions, solution, **kw: [float(c) for c in correct])
    opts = dict(max_len=1000, min_value_wrong=-1.0, max_value_wrong=-0.4, min_value_correct=0.3, max_value_correct=1.2)
    fn = trl_acc.get_cosine_scaled_reward(**opts)
    theirs = fn([[{"content": ""}]] * 200, ["x"] * 200, [[1] * int(n) for n in lengths])
    _, ours = run("cosine", make_ctx(lengths.tolist(), correct.astype(float).tolist()), **opts, exceed_penalty=None)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_cosine_through_a_spec():
    pipe = load_spec(
        {
            "verifier": "exact",
            "length_unit": "words",
            "shaping": [{"name": "cosine", "max_len": 4, "exceed_penalty": None}],
        }
    )
    s = pipe.score(recs([("q", "Answer: 4", "4"), ("q", "Answer: 5", "4"), ("q", "Answer: 4", None)]))
    assert s.total.tolist() == pytest.approx([0.75, -0.75, 0.0])  # L = 2 of 4; unknown keeps base.wrong 0


# --------------------------------------------------------------------------- dapo_overlong
def test_dapo_overlong_hand_computed():
    ctx = make_ctx([0, 80, 90, 100, 101], [1, 0, None, 1, 1])
    new, comp = run("dapo_overlong", ctx, max_len=100, buffer=20, factor=0.5)
    assert comp.tolist() == [0.0, 0.0, -0.25, -0.5, -0.5]
    assert new.tolist() == [1.0, 0.0, -0.25, 0.5, 0.5]
    _, comp = run("dapo_overlong", make_ctx([100, 101], [1, 1]), max_len=100, buffer=0)
    assert comp.tolist() == [0.0, -1.0]


def test_dapo_overlong_matches_trl_soft_overlong_punishment():
    from trl.rewards import get_soft_overlong_punishment

    rng = np.random.default_rng(1)
    lengths = np.concatenate([rng.integers(0, 5000, size=300), [3071, 3072, 3073, 4095, 4096, 4097]])
    theirs = get_soft_overlong_punishment(max_completion_len=4096, soft_punish_cache=1024)(
        [[0] * int(n) for n in lengths]
    )
    _, ours = run("dapo_overlong", make_ctx(lengths.tolist(), [1] * len(lengths)), max_len=4096, buffer=1024)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_dapo_overlong_options_and_spec():
    with pytest.raises(SpecError, match=r"shaping\[0\]\(dapo_overlong\).*buffer .* must not exceed max_len"):
        load_spec({"shaping": [{"name": "dapo_overlong", "max_len": 10, "buffer": 20}]})
    with pytest.raises(SpecError, match=r"dapo_overlong\)\.buffer: Field required"):
        load_spec({"shaping": [{"name": "dapo_overlong", "max_len": 10}]})
    pipe = load_spec(
        {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "dapo_overlong", "max_len": 4, "buffer": 2}]}
    )
    assert pipe.score(recs([("q", "well. Answer: 4", "4")])).total.tolist() == [0.5]


# --------------------------------------------------------------------------- truncation
def test_truncation_over_budget_and_truncated_score_the_wrong_value():
    ctx = make_ctx(
        [50, 100, 101, 50, 500],
        [1, 1, 1, 1, None],
        truncated=[False, False, False, True, False],
        base_values=LASER_BASE,
    )
    new, comp = run("truncation", ctx, max_len=100)
    assert new.tolist() == [1.0, 1.0, -0.5, -0.5, -0.5]  # value defaults to base.wrong
    assert comp.tolist() == new.tolist()
    new, _ = run("truncation", ctx, max_len=100, value=-1.0)
    assert new.tolist() == [1.0, 1.0, -1.0, -1.0, -1.0]


def test_truncation_dler_no_eos_coefficient():
    ctx = make_ctx([50, 50, 200, 50], [1, 0, 1, 1], truncated=[False, True, True, True], reward=[1.0, 0.5, 1.0, 1.0])
    new, _ = run("truncation", ctx, max_len=100, no_eos_coef=0.1)
    assert new.tolist() == pytest.approx([1.0, 0.05, 0.0, 0.1])  # over the budget still gets value


def test_truncation_through_a_spec():
    pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "truncation", "max_len": 3}]})
    rows = [
        {"prompt_id": "q", "completion": c, "answer": "4", "truncated": t}
        for c, t in [("Answer: 4", False), ("so so so. Answer: 4", False), ("Answer: 4", True)]
    ]
    s = pipe.score(rows)
    assert s.total.tolist() == [1.0, 0.0, 0.0] and s.values["truncation"].tolist() == [1.0, 0.0, 0.0]
    assert s.components["truncation"].tolist() == [0.0, -1.0, -1.0]  # its contribution: what it took away


# --------------------------------------------------------------------------- budget_curriculum
def test_budget_schedules():
    from rewardsmith.shaping.curriculum import budget_at

    exp = [budget_at(t, 1000, 250, 10, "exponential", gamma=0.5) for t in (0, 9, 10, 19, 20, 35, -3)]
    assert exp == [1000, 1000, 500, 500, 250, 250, 1000]
    lin = [budget_at(t, 1000, 250, 10, "linear", decrement=300) for t in (0, 10, 20, 30)]
    assert lin == [1000, 700, 400, 250]


def test_budget_curriculum_drives_truncation_and_laser():
    opts = dict(start=1000, end=250, every=10, gamma=0.5)
    ctx = make_ctx([400, 600, 600, 400], [1, 1, 0, 1], truncated=[False, False, False, True], step=10)  # budget 500
    new, comp = run("budget_curriculum", ctx, **opts)
    assert new.tolist() == [1.0, 0.0, 0.0, 0.0] and comp.tolist() == new.tolist()
    new, comp = run("budget_curriculum", ctx, **opts, apply="laser", alpha=0.25)
    assert comp.tolist() == [0.25, 0.0, 0.0, 0.25] and new.tolist() == [1.25, 1.0, 0.0, 1.25]
    ctx0 = make_ctx([400, 600], [1, 1], step=0)  # budget 1000: nothing over
    assert run("budget_curriculum", ctx0, **opts)[0].tolist() == [1.0, 1.0]
    _, comp = run("budget_curriculum", ctx, **opts, apply="laser", mode="penalty")
    assert comp.tolist() == [0.0, -0.5, 0.0, 0.0]


def test_budget_curriculum_options_and_spec():
    with pytest.raises(SpecError, match="decrement: required when decay is 'linear'"):
        load_spec({"shaping": [{"name": "budget_curriculum", "start": 100, "end": 10, "every": 5, "decay": "linear"}]})
    with pytest.raises(SpecError, match=r"budget_curriculum\)\.apply: Input should be 'truncation' or 'laser'"):
        load_spec({"shaping": [{"name": "budget_curriculum", "start": 100, "end": 10, "every": 5, "apply": "cosine"}]})
    with pytest.raises(SpecError, match=r"end .* must not exceed start"):
        load_spec({"shaping": [{"name": "budget_curriculum", "start": 10, "end": 100, "every": 5}]})
    spec = {
        "verifier": "exact",
        "length_unit": "words",
        "shaping": [{"name": "budget_curriculum", "start": 8, "end": 2, "every": 1, "decay": "linear", "decrement": 3}],
    }
    rows = recs([("q", "Answer: 4", "4"), ("q", "so so so. Answer: 4", "4")])
    pipe = load_spec(spec)
    assert pipe.score(rows, step=0).total.tolist() == [1.0, 1.0]  # budget 8
    assert pipe.score(rows, step=1).total.tolist() == [1.0, 1.0]  # budget 5: L = 5 is within
    assert pipe.score(rows, step=2).total.tolist() == [1.0, 0.0]  # budget max(2, 8 - 6) = 2
