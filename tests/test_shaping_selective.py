"""grpo_lambda: group selection, tie-breaking, any penalty shaper, edge cases."""

import numpy as np
import pytest

from _shaping import make_ctx, recs, run, shaper
from rewardsmith import SpecError, load_spec
from rewardsmith.shaping.selective import select_top_groups

# four groups of two, lengths 10 and 30; correct ratios a 1, b 1/2, c 1/2, d 0
GROUPS = list("aabbccdd")
LENGTHS = [10, 30] * 4
CORRECT = [1, 1, 1, 0, 1, 0, 0, 0]


def test_select_top_groups_counts_and_ties():
    r = np.array([0.5, 1.0, 0.5, 0.0, 0.5])
    assert select_top_groups(r, 0.4).tolist() == [True, True, False, False, False]  # ceil(0.4·5) = 2
    assert select_top_groups(r, 0.4, "include").tolist() == [True, True, True, False, True]
    assert select_top_groups(r, 0.4, "exclude").tolist() == [False, True, False, False, False]
    assert select_top_groups(r, 0.8, "exclude").tolist() == [True, True, True, False, True]  # all tied fit
    assert select_top_groups(r, 0.0).tolist() == [False] * 5
    assert select_top_groups(r, 1.0, "exclude").tolist() == [True] * 5
    assert select_top_groups(np.array([]), 0.5).tolist() == []
    picks = {tuple(select_top_groups(r, 0.4, "random", np.random.default_rng(s)).tolist()) for s in range(40)}
    assert all(p[1] and sum(p) == 2 for p in picks) and len(picks) == 3  # group 1 always, one of the three ties


def test_top_half_gets_kimi_the_rest_plain_correctness():
    ctx = make_ctx(LENGTHS, CORRECT, GROUPS)
    new, comp = run("grpo_lambda", ctx)
    assert comp.tolist() == [0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0]  # a and b (first of the b/c tie)
    assert new.tolist() == [1.5, 0.5, 1.5, -0.5, 1, 0, 0, 0]
    assert run("grpo_lambda", ctx, tie_break="include")[1].tolist() == [0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0, 0]
    assert run("grpo_lambda", ctx, tie_break="exclude")[1].tolist() == [0.5, -0.5, 0, 0, 0, 0, 0, 0]
    assert run("grpo_lambda", ctx, top_fraction=0.0)[1].tolist() == [0.0] * 8
    assert run("grpo_lambda", ctx, top_fraction=1.0)[1].tolist() == run("kimi", ctx)[1].tolist()


def test_any_penalty_shaper_replacing_or_stateful():
    ctx = make_ctx(LENGTHS, CORRECT, GROUPS)
    # cosine replaces the base: the component is the change it makes on the chosen groups
    _, comp = run("grpo_lambda", ctx, penalty={"name": "cosine", "max_len": 40}, top_fraction=0.25)
    cos = run("cosine", ctx, max_len=40)[0] - ctx.reward
    assert comp.tolist() == pytest.approx(cos[:2].tolist() + [0.0] * 6)
    # a stateful penalty keeps its state under 'penalty'
    state = {}
    run("grpo_lambda", make_ctx(LENGTHS, CORRECT, GROUPS, state=state), penalty="hapo")
    assert state == {"penalty": {"history": {"a": 10.0, "b": 10.0, "c": 10.0}}}
    _, comp = run("grpo_lambda", make_ctx([20, 20], [1, 1], ["a", "c"], state=state), penalty="hapo", top_fraction=0.5)
    assert comp.tolist() == pytest.approx([-0.7, 0.0])  # a chosen (first of the tie), c not


def test_edge_cases():
    assert run("grpo_lambda", make_ctx([10], [1]))[1].tolist() == [0.0]  # single rollout: Kimi gives 0
    assert run("grpo_lambda", make_ctx([10, 30], [0, 0]))[1].tolist() == [0.0, -0.5]  # all wrong, the only group
    assert run("grpo_lambda", make_ctx([10, 30, 10, 30], [None, 1, 1, 1], ["u", "u", "v", "v"]))[1].tolist() == [
        0.0,
        0.0,
        0.5,
        -0.5,
    ]
    # random tie-break: reproducible for a step and seed
    ctx = make_ctx(LENGTHS, CORRECT, GROUPS, step=3)
    a, b = (run("grpo_lambda", ctx, tie_break="random", seed=7)[1] for _ in range(2))
    assert a.tolist() == b.tolist()


def test_bad_options_name_the_field():
    with pytest.raises(SpecError, match=r"grpo_lambda\.penalty: unknown shaper 'kimmi'"):
        load_spec({"shaping": [{"name": "grpo_lambda", "penalty": "kimmi"}]})
    with pytest.raises(SpecError, match=r"grpo_lambda\.penalty\(kimi\)\.coef"):
        load_spec({"shaping": [{"name": "grpo_lambda", "penalty": {"name": "kimi", "coef": -1}}]})
    with pytest.raises(SpecError, match=r"grpo_lambda\)\.top_fraction: Input should be less than or equal to 1"):
        load_spec({"shaping": [{"name": "grpo_lambda", "top_fraction": 1.5}]})
    assert shaper("grpo_lambda", penalty={"name": "laser", "target": 5}).penalty.name == "laser"


def test_through_a_spec():
    pipe = load_spec(
        {
            "verifier": "exact",
            "length_unit": "words",
            "shaping": [{"name": "grpo_lambda", "penalty": {"name": "kimi", "coef": 0.4}}],
        }
    )
    s = pipe.score(
        recs(
            [
                ("a", "Answer: 4", "4"),
                ("a", "so so so. Answer: 4", "4"),
                ("b", "Answer: 5", "4"),
                ("b", "so so so. Answer: 4", "4"),
            ]
        )
    )
    assert s.total.tolist() == pytest.approx([1.2, 0.8, 0.0, 1.0])
