"""kimi, efficient_reasoning, l1_exact, l1_max: hand-computed values and edge cases."""

import math

import pytest

from _shaping import make_ctx, recs, run
from rewardsmith import load_spec
from rewardsmith.shaping import BaseValues

SIG1 = 1.0 / (1.0 + math.exp(-1.0))  # sigmoid(1)


# --------------------------------------------------------------------------- kimi
def test_kimi_hand_computed_with_coef():
    # Lmin 100, Lmax 500: λ = 0.5, 0.25, 0, -0.5; wrong rows get min(0, λ)
    ctx = make_ctx([100, 200, 300, 500], [1, 1, 0, 0])
    new, comp = run("kimi", ctx, coef=0.4)
    assert comp.tolist() == pytest.approx([0.2, 0.1, 0.0, -0.2])
    assert new.tolist() == pytest.approx([1.2, 1.1, 0.0, -0.2])


def test_kimi_statistics_are_per_group_not_per_batch():
    ctx = make_ctx([10, 20, 1000, 3000], [1, 1, 1, 1], ["a", "a", "b", "b"])
    _, comp = run("kimi", ctx)
    assert comp.tolist() == [0.5, -0.5, 0.5, -0.5]  # over the batch, row 1 would get ~0.5


def test_kimi_edge_cases():
    assert run("kimi", make_ctx([7, 7, 7], [1, 0, 1]))[1].tolist() == [0.0, 0.0, 0.0]  # equal lengths
    assert run("kimi", make_ctx([42], [1]))[1].tolist() == [0.0]  # single rollout
    assert run("kimi", make_ctx([10, 30], [0, 0]))[1].tolist() == [0.0, -0.5]  # all wrong
    assert run("kimi", make_ctx([10, 30], [1, 1]))[1].tolist() == [0.5, -0.5]  # all correct
    # unknown correctness: no term, but its length still counts for the group's min/max
    assert run("kimi", make_ctx([10, 20, 30], [1, None, 0]))[1].tolist() == [0.5, 0.0, -0.5]
    # truncated rollouts are shaped by length like any other
    assert run("kimi", make_ctx([10, 30], [1, 0], truncated=[False, True]))[1].tolist() == [0.5, -0.5]


def test_kimi_through_a_spec():
    pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "kimi", "coef": 0.5}]})
    s = pipe.score(
        recs(
            [
                ("q", "Answer: 4", "4"),
                ("q", "one two. Answer: 4", "4"),
                ("q", "one two three four. Answer: 5", "4"),
                ("r", "Answer: 4", "4"),
            ]
        )
    )
    # group q lengths 2, 4, 6: λ = 0.5, 0, -0.5; group r has one rollout
    assert s.components["kimi"].tolist() == [0.25, 0.0, -0.25, 0.0]
    assert s.total.tolist() == [1.25, 1.0, -0.25, 1.0]


# --------------------------------------------------------------------------- efficient_reasoning
def test_efficient_reasoning_hand_computed():
    # correct lengths 10, 30: mu 20, population sd 10, z = -1, +1
    _, comp = run("efficient_reasoning", make_ctx([10, 30, 50], [1, 1, 0]), alpha=0.2)
    assert comp.tolist() == pytest.approx([-0.2 * (1 - SIG1), -0.2 * SIG1, 0.0])


def test_efficient_reasoning_groups_and_degenerate_spread():
    ctx = make_ctx([10, 30, 5, 99, 8, 8], [1, 1, 1, 0, 1, 1], ["a", "a", "b", "b", "c", "c"])
    _, comp = run("efficient_reasoning", ctx, alpha=0.4)
    # a: z = -1, +1; b: one correct rollout -> z = 0 -> -alpha/2; c: equal lengths -> -alpha/2
    assert comp.tolist() == pytest.approx([-0.4 * (1 - SIG1), -0.4 * SIG1, -0.2, 0.0, -0.2, -0.2])


def test_efficient_reasoning_edge_cases():
    assert run("efficient_reasoning", make_ctx([10, 20], [0, 0]))[1].tolist() == [0.0, 0.0]  # all wrong
    assert run("efficient_reasoning", make_ctx([10], [1]))[1].tolist() == [-0.1]  # single rollout, alpha 0.2
    # unknown correctness neither gets a term nor enters mu/sd
    _, comp = run("efficient_reasoning", make_ctx([10, 30, 1000], [1, 1, None]), alpha=0.2)
    assert comp.tolist() == pytest.approx([-0.2 * (1 - SIG1), -0.2 * SIG1, 0.0])
    # one outlier among n = 4: z = ±sqrt(3) or -1/sqrt(3), whatever the scale
    _, comp = run("efficient_reasoning", make_ctx([0, 0, 0, 1e9], [1, 1, 1, 1]), alpha=1.0)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    assert comp.tolist() == pytest.approx([-sig(-1 / math.sqrt(3))] * 3 + [-sig(math.sqrt(3))])


def test_efficient_reasoning_through_a_spec():
    pipe = load_spec(
        {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "efficient_reasoning", "alpha": 0.2}]}
    )
    s = pipe.score(recs([("q", "Answer: 4", "4"), ("q", "a b c d. Answer: 4", "4"), ("q", "Answer: 5", "4")]))
    assert s.total.tolist() == pytest.approx([1 - 0.2 * (1 - SIG1), 1 - 0.2 * SIG1, 0.0])


# --------------------------------------------------------------------------- l1
def test_l1_exact_option_target_and_meta_override():
    _, comp = run("l1_exact", make_ctx([90, 100, 150], [1, None, 0]), target=100, alpha=0.01)
    assert comp.tolist() == pytest.approx([-0.1, 0.0, -0.5])  # every rollout, correct or not
    ctx = make_ctx([90, 100, 150], [1, 1, 0], metas=[{"target_length": 50}, {}, {"target_length": "150"}])
    _, comp = run("l1_exact", ctx, target=100, alpha=0.01)
    assert comp.tolist() == pytest.approx([-0.4, 0.0, 0.0])


def test_l1_needs_a_target_from_somewhere():
    with pytest.raises(ValueError, match=r"record 0 .*no meta.target_length"):
        run("l1_exact", make_ctx([10], [1]))
    with pytest.raises(ValueError, match=r"record 1 .*no meta.target_length"):
        run("l1_max", make_ctx([10, 20], [1, 1], metas=[{"target_length": 5}, {}]))
    with pytest.raises(ValueError, match=r"record 0 .*'many' is not a number"):
        run("l1_exact", make_ctx([10], [1], metas=[{"target_length": "many"}]))


def test_l1_max_scales_correct_rewards_only():
    ctx = make_ctx([0, 1000, 3000, 500, 500], [1, 1, 1, 0, None], reward=[1.25, 1.25, 1.25, 0.25, 0.25])
    new, comp = run("l1_max", ctx, target=1000, alpha_convention="paper")  # alpha 3e-4, delta 0.5
    assert comp.tolist() == pytest.approx([0.8, 0.5, 0.0, 0.0, 0.0])  # clip(3e-4·(1000 − L) + 0.5, 0, 1)
    assert new.tolist() == pytest.approx([1.05, 0.75, 0.25, 0.25, 0.25])  # the +0.25 stays
    _, comp = run("l1_max", ctx, target=1000)  # the authors' code (default): slope alpha/2
    assert comp.tolist() == pytest.approx([0.65, 0.5, 0.2, 0.0, 0.0])  # clip(1.5e-4·(1000 − L) + 0.5, 0, 1)


def test_l1_max_with_a_nonunit_base_and_through_a_spec():
    ctx = make_ctx([100, 100], [1, 0], base_values=BaseValues(2.0, -0.5, -1.0))
    new, _ = run("l1_max", ctx, target=100, alpha=0.001, delta=0.25, alpha_convention="paper")
    assert new.tolist() == [0.5, -0.5]
    pipe = load_spec(
        {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "l1_max", "alpha": 0.2, "delta": 0.5}]}
    )
    s = pipe.score(recs([("q", "Answer: 4", "4"), ("q", "a b c d. Answer: 4", "4")], meta={"target_length": 2}))
    assert s.total.tolist() == pytest.approx([0.5, 0.1])  # clip(0.1·(2 − L) + 0.5): L = 2, 6


def test_l1_exact_through_a_spec():
    pipe = load_spec(
        {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "l1_exact", "target": 4, "alpha": 0.1}]}
    )
    s = pipe.score(recs([("q", "Answer: 4", "4"), ("q", "a b c d. Answer: 5", "4")]))
    assert s.total.tolist() == pytest.approx([0.8, -0.2])
