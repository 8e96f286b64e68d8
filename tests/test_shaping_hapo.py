"""hapo: hand-computed cosine and linear rewards, history updates after scoring, resume."""

import json
import math

import numpy as np
import pytest

from _shaping import assert_resume_matches, make_ctx, random_batches, recs, run, shaper
from rewardsmith import SpecError, load_spec

R2 = math.sqrt(0.5)  # cos(π/4)


def test_cosine_variant_hand_computed_against_history():
    state = {"history": {"q": 100.0}}
    ctx = make_ctx([50, 100, 150, 250, 50, 150, 250], [1, 1, 1, 1, 0, 0, 0], state=state)
    new, comp = run("hapo", ctx)
    # r = L/h = .5, 1, 1.5, 2.5: c = cos(r·π/2) for r < 2 else -1; correct max(-0.7, c), wrong min(0, c)
    assert comp.tolist() == pytest.approx([R2, 0.0, -0.7, -0.7, 0.0, -R2, -1.0], abs=1e-12)
    assert comp[1] == 0.0  # exactly: r = 1 is the history itself
    assert new.tolist() == pytest.approx((np.array([1, 1, 1, 1, 0, 0, 0]) + comp).tolist())
    assert state["history"] == {"q": 50.0}  # updated after scoring


def test_linear_variant_hand_computed():
    state = {"history": {"q": 100.0}}
    ctx = make_ctx([50, 105, 130, 300, 50, 150, 300], [1, 1, 1, 1, 0, 0, 0], state=state)
    _, comp = run("hapo", ctx, variant="linear")
    # correct: 1 - r below h, 0 up to 1.1h, then max(-0.7, -(r - 1.1)); wrong: 0 below 1.1h, then max(-1, -(r - 1.1))
    assert comp.tolist() == pytest.approx([0.5, 0.0, -0.2, -0.7, 0.0, -0.4, -1.0])
    state = {"history": {"q": 100.0}}
    _, comp = run(
        "hapo",
        make_ctx([130, 150], [1, 0], state=state),
        variant="linear",
        tolerance=0.0,
        correct_floor=-0.25,
        weight=2.0,
    )
    assert comp.tolist() == pytest.approx([-0.5, -1.0])  # 2·max(-0.25, -0.3), 2·(-0.5)


def test_history_starts_empty_is_per_prompt_and_updates_after_the_batch():
    state = {}
    ctx = make_ctx([30, 10, 50, 40, 20], [1, 1, 1, 0, None], ["a", "a", "b", "b", "c"], state=state)
    assert run("hapo", ctx)[1].tolist() == [0.0] * 5  # no history yet: 0, even for the 3× longer rollout
    assert state["history"] == {"a": 10.0, "b": 50.0}  # c has no correct rollout: no entry
    ctx = make_ctx([20, 100, 40], [1, 1, 1], ["a", "b", "c"], state=state)
    _, comp = run("hapo", ctx)
    assert comp.tolist() == pytest.approx([-0.7, -0.7, 0.0])  # a: r = 2 -> -1 -> floor; b: r = 2; c: none
    assert state["history"] == {"a": 10.0, "b": 50.0, "c": 40.0}  # min() never grows
    json.dumps(state)


def test_edge_cases():
    # all wrong / unknown: no term, history unchanged
    state = {"history": {"q": 10.0}}
    assert run("hapo", make_ctx([5, 30, 30], [0, 0, None], state=state))[1].tolist() == pytest.approx([0.0, -1.0, 0.0])
    assert state["history"] == {"q": 10.0}
    # equal lengths at the history: exactly 0; single rollout group
    assert run("hapo", make_ctx([10, 10], [1, 1], state={"history": {"q": 10.0}}))[1].tolist() == [0.0, 0.0]
    assert run("hapo", make_ctx([5], [1], state={"history": {"q": 10.0}}))[1].tolist() == pytest.approx([R2])
    # a zero-length correct history: L = 0 is on it, anything longer is infinitely longer
    assert run("hapo", make_ctx([0, 3, 3], [1, 1, 0], state={"history": {"q": 0.0}}))[1].tolist() == [1.0, -0.7, -1.0]
    assert run("hapo", make_ctx([0, 3, 3], [1, 1, 0], state={"history": {"q": 0.0}}), variant="linear")[1].tolist() == [
        1.0,
        -0.7,
        -1.0,
    ]
    # truncated rollouts are scored by length like the others
    assert run("hapo", make_ctx([40], [0], truncated=[True], state={"history": {"q": 10.0}}))[1].tolist() == [-1.0]


def test_options_are_validated():
    with pytest.raises(SpecError, match=r"shaping\[0\]\(hapo\)\.variant: Input should be 'cosine' or 'linear'"):
        load_spec({"shaping": [{"name": "hapo", "variant": "exp"}]})
    with pytest.raises(SpecError, match=r"hapo\)\.correct_floor: Input should be less than or equal to 0"):
        load_spec({"shaping": [{"name": "hapo", "correct_floor": 0.5}]})
    assert shaper("hapo").stateful


def test_through_a_spec_and_resume(tmp_path):
    pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "hapo"}]})
    rows = recs([("q", "Answer: 4", "4"), ("q", "a b. Answer: 4", "4"), ("q", "a b c d e f. Answer: 5", "4")])
    assert pipe.score(rows).total.tolist() == [1.0, 1.0, 0.0]  # first sight of q: no history
    # h = 2 words: r = 1, 2, 4
    assert pipe.score(rows).total.tolist() == pytest.approx([1.0, 0.3, -1.0])
    spec = {"verifier": "exact", "length_unit": "tokens", "shaping": [{"name": "hapo", "variant": "linear"}]}
    batches = random_batches(6, seed=5)
    state = assert_resume_matches(spec, batches, split=2, tmp_path=tmp_path)
    assert len(state["components"]["hapo"]["history"]) == 6
    fresh = load_spec(spec)  # without the history the later batches score differently
    assert any(
        not np.array_equal(
            fresh.score(b).total, load_spec({**spec, "state": str(tmp_path / "whole.json")}).score(b).total
        )
        for b in batches[2:]
    )
