"""laser, laser_d, laser_de: hand-computed step rewards, adaptive targets, state and resume."""

import json

import numpy as np
import pytest

from _shaping import assert_resume_matches, make_ctx, random_batches, recs, run, shaper
from rewardsmith import SpecError, load_spec
from rewardsmith.shaping import BaseValues
from rewardsmith.shaping.laser import bucket_sizes, candidate_lengths, coverage_counts

LASER_BASE = BaseValues(1.0, -0.5, -1.0)
D_OPTS = dict(lower=100, upper=400, interval=100, alpha=0.5, anchor=None)  # word-scale lengths: no jump to 1024


# --------------------------------------------------------------------------- laser
@pytest.mark.parametrize(
    "mode, expected",
    [("reward", [0.5, 0.5, 0.0, 0.0]), ("penalty", [0.0, 0.0, -0.5, 0.0]), ("hybrid", [0.5, 0.5, -0.5, 0.0])],
)
def test_laser_modes(mode, expected):
    ctx = make_ctx([50, 100, 150, 50], [1, 1, 1, 0], base_values=LASER_BASE)
    new, comp = run("laser", ctx, target=100, mode=mode)
    assert comp.tolist() == expected
    assert new.tolist() == (np.array([1.0, 1.0, 1.0, -0.5]) + expected).tolist()


def test_laser_never_shapes_format_failures_unknown_or_wrong():
    ctx = make_ctx(
        [50, 50, 50, 50], [1, 1, None, 0], format_ok=[True, False, True, True], answered=[True, True, True, False]
    )
    assert run("laser", ctx, target=100, mode="hybrid")[1].tolist() == [0.5, 0.0, 0.0, 0.0]
    assert run("laser", make_ctx([10], [1]), target=100)[1].tolist() == [0.5]  # single rollout


def test_laser_through_a_spec_with_the_laser_base_and_format_gate():
    spec = {
        "verifier": "exact",
        "length_unit": "words",
        "base": {"correct": 1, "wrong": -0.5, "no_answer": -1},
        "format": "think_answer",
        "shaping": [{"name": "laser", "target": 5, "alpha": 0.5}],
    }
    s = load_spec(spec).score(
        recs(
            [
                ("q", "<think>ok</think> Answer: 4", "4"),
                ("q", "Answer: 4", "4"),
                ("q", "<think>a b c d e</think> Answer: 4", "4"),
                ("q", "<think>x</think> Answer: 5", "4"),
            ]
        )
    )
    # format failure (row 1) gets no_answer, never the bonus; row 2 is 7 words > 5
    assert s.total.tolist() == [1.5, -1.0, 1.0, -0.5]


# --------------------------------------------------------------------------- laser_d building blocks
def test_candidates_coverage_and_k():
    assert candidate_lengths(100, 400, 100, anchor=None).tolist() == [100, 200, 300, 400]
    assert candidate_lengths(100, 350, 100, anchor=None).tolist() == [100, 200, 300, 400]  # the first >= upper ends it
    assert candidate_lengths(64, 64, 32).tolist() == [64]
    # the authors' get_length_threshold: below 1024 the list jumps from lower to 1024
    assert candidate_lengths(512, 4096, 1024).tolist() == [512, 1024, 2048, 3072, 4096]
    assert candidate_lengths(256, 3000, 512).tolist() == [256, 1024, 1536, 2048, 2560, 3072]
    assert candidate_lengths(2048, 8192, 2048).tolist() == [2048, 4096, 6144, 8192]
    total, covered = coverage_counts(
        np.array([50.0, 100.0, 101.0, 999.0]), np.array([0, 0, 0, 2]), np.array([100.0, 200.0])
    )
    assert total.tolist() == [3, 0, 1] and covered.tolist() == [[2, 3], [0, 0], [0, 0]]
    assert (
        bucket_sizes(8).tolist() == [5, 2, 1]
        and bucket_sizes(16).tolist() == [10, 5, 1]
        and bucket_sizes(1).tolist() == [0, 0, 1]
    )


# groups of 3: A easy (2/3 correct), B medium (1/3), C hard (0/3)
BATCH1 = dict(
    lengths=[50, 150, 350, 120, 250, 380, 90, 260, 500], correct=[1, 1, 0, 1, 0, 0, 0, 0, 0], groups=list("AAABBBCCC")
)


def test_laser_d_first_batch_uses_upper_then_chooses_targets():
    state = {}
    ctx = make_ctx(BATCH1["lengths"], BATCH1["correct"], BATCH1["groups"], state=state, step=0)
    _, comp = run("laser_d", ctx, **D_OPTS)
    assert comp.tolist() == [0.5, 0.5, 0, 0.5, 0, 0, 0, 0, 0]  # every target = upper = 400
    # n = 3 -> k = (2, 1, 1). easy lengths 50,150,350: covered (1,2,2,3) of 3; 2·covered >= 3 first at 200.
    # medium 120,250,380: covered (0,1,2,3); needs all 3 -> 400. hard 90,260,500: never all -> upper.
    assert state["targets"] == [200.0, 400.0, 400.0] and state["updated_at"] == 0
    assert state["history"] == [
        {"step": 0, "rows": 9, "groups": 3, "total": [3, 3, 3], "covered": [[1, 2, 2, 3], [0, 1, 2, 3], [1, 1, 2, 2]]}
    ]
    json.dumps(state)  # JSON-serialisable
    # the next batch is scored with the chosen targets: easy target 200
    ctx2 = make_ctx([150, 250, 100], [1, 1, 1], ["D"] * 3, state=state, step=1)
    assert run("laser_d", ctx2, **D_OPTS)[1].tolist() == [0.5, 0.0, 0.5]
    assert state["updated_at"] == 0 and len(state["history"]) == 2  # not re-chosen before update_every steps


def test_laser_d_update_every_window_and_explicit_k():
    state = {}
    sh = shaper("laser_d", **D_OPTS, update_every=2, window=1)
    sh.apply(make_ctx(BATCH1["lengths"], BATCH1["correct"], BATCH1["groups"], state=state, step=0))
    # step 1: an easy group with long rollouts; not an update step (1 - 0 < 2)
    sh.apply(make_ctx([390, 390, 390], [1, 1, 1], ["E"] * 3, state=state, step=1))
    assert state["targets"] == [200.0, 400.0, 400.0]
    # step 2: update from the window (only step 2's data): easy lengths 300, 300, 300 -> covered (0,0,3,3)
    sh.apply(make_ctx([300, 300, 300], [1, 1, 1], ["F"] * 3, state=state, step=2))
    assert [h["step"] for h in state["history"]] == [2]
    assert state["targets"] == [300.0, 400.0, 400.0] and state["updated_at"] == 2
    # the paper's k = (6, 3, 1) with group size 3: easy needs covered·6 >= 3 -> 1 of 3 is enough
    state = {}
    shaper("laser_d", **D_OPTS, k=[6, 3, 1]).apply(
        make_ctx(BATCH1["lengths"], BATCH1["correct"], BATCH1["groups"], state=state)
    )
    assert state["targets"] == [100.0, 200.0, 400.0]


def test_laser_d_edge_cases():
    # single-rollout groups: a correct one is easy, a wrong one hard; k from n = 1 is (0, 0, 1)
    state = {}
    _, comp = run("laser_d", make_ctx([50, 500], [1, 0], ["a", "b"], state=state), **D_OPTS)
    assert comp.tolist() == [0.5, 0.0] and state["targets"] == [400.0, 400.0, 400.0]
    # all unknown: no monitoring data, no targets chosen, nothing shaped
    state = {}
    _, comp = run("laser_d", make_ctx([50, 60], [None, None], state=state), **D_OPTS)
    assert comp.tolist() == [0.0, 0.0] and "targets" not in state and state["history"] == []
    # all correct with equal lengths; the same step scored twice merges into one history entry
    state = {}
    sh = shaper("laser_d", **D_OPTS)
    sh.apply(make_ctx([100] * 3, [1] * 3, state=state, step=5))
    sh.apply(make_ctx([100] * 3, [1] * 3, ["r"] * 3, state=state, step=5))
    assert state["history"] == [
        {"step": 5, "rows": 6, "groups": 2, "total": [6, 0, 0], "covered": [[6, 6, 6, 6], [0] * 4, [0] * 4]}
    ]
    # a truncated correct rollout is shaped by its length like any other
    assert run("laser_d", make_ctx([50], [1], truncated=[True]), **D_OPTS)[1].tolist() == [0.5]


def test_laser_d_bad_options_name_the_field():
    with pytest.raises(SpecError, match=r"shaping\[0\]\(laser_d\)\.interval: Field required"):
        load_spec({"shaping": [{"name": "laser_d", "lower": 1, "upper": 2}]})
    with pytest.raises(SpecError, match=r"lower .* must not exceed upper"):
        load_spec({"shaping": [{"name": "laser_d", "lower": 5, "upper": 2, "interval": 1}]})
    with pytest.raises(SpecError, match=r"laser_d\)\.k"):
        load_spec({"shaping": [{"name": "laser_d", "lower": 1, "upper": 2, "interval": 1, "k": [1, 2]}]})
    with pytest.raises(SpecError, match=r"laser\)\.mode: Input should be 'reward', 'penalty' or 'hybrid'"):
        load_spec({"shaping": [{"name": "laser", "target": 10, "mode": "both"}]})


def test_laser_d_resume_equals_one_run(tmp_path):
    spec = {
        "verifier": "exact",
        "length_unit": "tokens",
        "base": {"correct": 1, "wrong": -0.5, "no_answer": -1},
        "shaping": [
            {
                "name": "laser_d",
                "lower": 50,
                "upper": 400,
                "interval": 50,
                "update_every": 2,
                "window": 3,
                "anchor": None,
            }
        ],
    }
    batches = random_batches(7, seed=3)
    state = assert_resume_matches(spec, batches, split=3, tmp_path=tmp_path)
    targets = state["components"]["laser_d"]["targets"]
    assert targets != [400.0] * 3 and state["components"]["laser_d"]["updated_at"] == 6
    # the state matters: a pipeline without it scores the later batches differently
    fresh = load_spec(spec)
    assert any(
        not np.array_equal(
            fresh.score(b).total, load_spec({**spec, "state": str(tmp_path / "whole.json")}).score(b).total
        )
        for b in batches[3:]
    )


# --------------------------------------------------------------------------- laser_de
def test_laser_de_explores_long_wrong_answers_without_repetition():
    texts = ["ok", "a b c d e f g h", "x y x y x y x y x y", "a b c d e f g h", "a b c d e f g h", "ok"]
    ctx = make_ctx(
        [50, 500, 500, 500, 50, 500],
        [1, 0, 0, 0, 0, None],
        completions=texts,
        answered=[True, True, True, False, True, True],
        base_values=LASER_BASE,
    )
    _, comp = run("laser_de", ctx, **D_OPTS)
    # correct short: +α; wrong long & varied: +α; wrong long & repetitive: 0; no answer: 0; wrong short: 0; unknown: 0
    assert comp.tolist() == [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    # repetition over token ids where a record has them
    ctx = make_ctx(
        [500, 500],
        [0, 0],
        completions=["a b c d e f", "a b c d e f"],
        metas=[{"token_ids": [1, 2] * 10}, {"token_ids": list(range(20))}],
    )
    assert run("laser_de", ctx, **D_OPTS)[1].tolist() == [0.0, 0.5]
    # a stricter threshold calls the alternating text varied enough
    ctx = make_ctx([500], [0], completions=["x y x y x y x y x y"])
    assert run("laser_de", ctx, **D_OPTS, repetition_threshold=0.9)[1].tolist() == [0.5]


def test_laser_de_uses_adaptive_targets_for_both_terms():
    state = {}
    sh = shaper("laser_de", **D_OPTS)
    sh.apply(
        make_ctx(
            BATCH1["lengths"], BATCH1["correct"], BATCH1["groups"], completions=["a b c d e"] * 9, state=state, step=0
        )
    )
    assert state["targets"] == [200.0, 400.0, 400.0]
    # easy group (2/3): target 200 -> correct 150 gets +α, correct 250 not, wrong 250 explores (+α)
    ctx = make_ctx([150, 250, 250], [1, 1, 0], ["E"] * 3, completions=["a b c d e"] * 3, state=state, step=1)
    assert sh.apply(ctx)[1].tolist() == [0.5, 0.0, 0.5]


def test_laser_de_through_a_spec_and_resume(tmp_path):
    spec = {
        "verifier": "exact",
        "length_unit": "words",
        "base": {"correct": 1, "wrong": -0.5, "no_answer": -1},
        "shaping": [{"name": "laser_de", "lower": 2, "upper": 4, "interval": 1, "anchor": None}],
    }
    s = load_spec(spec).score(
        recs([("q", "Answer: 4", "4"), ("q", "a b c d. Answer: 5", "4"), ("q", "b. Answer: 5", "4")])
    )
    # targets = upper = 4 words: correct 2 words +0.5; wrong 6 words explores +0.5; wrong 3 words not
    assert s.total.tolist() == [1.5, 0.0, -0.5]
    tok_spec = {
        **spec,
        "length_unit": "tokens",
        "shaping": [{"name": "laser_de", "lower": 50, "upper": 400, "interval": 50, "update_every": 1, "anchor": None}],
    }
    assert_resume_matches(tok_spec, random_batches(5, seed=4), split=2, tmp_path=tmp_path)
