"""format_length: the label-free format-length surrogate, hand-computed."""

import numpy as np
import pytest

from _shaping import make_ctx, run
from rewardsmith import SpecError, load_spec
from rewardsmith.shaping.surrogate import has_think_block, length_score

TEXTS = [
    "<think>r</think> \\boxed{4}",
    "<think>r</think> no answer",
    "\\boxed{4}",
    "plain",
    "</think> <think> \\boxed{4}",
    "<think>r</think> \\boxed{}",
]
LENGTHS = [1536, 1536, 3072, 3072, 1536, 768]


def test_length_score_shape():
    assert length_score(np.array([0, 384, 768, 1920, 3072, 9999.0]), 3072, peak=0.25).tolist() == pytest.approx(
        [0.0, 0.75, 1.0, 0.5, -1.0, -1.0]
    )
    assert (
        has_think_block("a <think> b </think> c")
        and not has_think_block("</think><think>")
        and not has_think_block("<think> open")
    )


def test_format_length_hand_computed_replaces_the_reward():
    ctx = make_ctx(LENGTHS, [None] * 6, completions=TEXTS, reward=[5.0] * 6)
    new, comp = run("format_length", ctx)  # max_len 3072, peak 0.5
    # answer: 0.5·(think + answer) + ℓ; no answer: min(0, ℓ) alone; ℓ(0.5) = 1, ℓ(1) = -1, ℓ(0.25) = 0.75
    assert comp.tolist() == pytest.approx([2.0, 0.0, -0.5, -1.0, 1.5, 0.0])
    assert new.tolist() == comp.tolist()  # no ground truth, no correctness: the reward is the surrogate


def test_format_length_variants_modes_and_answer_sources():
    ctx = make_ctx(LENGTHS, [1] * 6, completions=TEXTS)
    new, comp = run("format_length", ctx, mode="add", variant="format_only")
    assert comp.tolist() == [1.0, 0.5, 0.5, 0.0, 0.5, 0.5]
    assert new.tolist() == (1.0 + comp).tolist()
    texts = ["<think>r</think><answer>4</answer>", "<think>r</think>\n#### 4", "<think>r</think> 4"]
    ctx = make_ctx([1536] * 3, [0] * 3, completions=texts, answered=[True, False, True])
    assert run("format_length", ctx, answer_from="answer_tag")[1].tolist() == [2.0, 0.0, 0.0]
    assert run("format_length", ctx, answer_from="hash")[1].tolist() == [0.0, 2.0, 0.0]
    assert run("format_length", ctx, answer_from="verifier")[1].tolist() == [2.0, 0.0, 2.0]
    assert (
        run("format_length", ctx, max_len=1536)[1].tolist() == [-1.0] * 3
    )  # no boxed answer: min(0, ℓ(1) = -1), no format credit


def test_a_reasoning_block_without_an_answer_earns_nothing():
    # the exploit the authors' code closes: a think block alone must not beat an empty completion
    ctx = make_ctx([1536, 1536], [None, None], completions=["<think>stalling</think>", "plain"])
    assert run("format_length", ctx)[1].tolist() == [0.0, 0.0]


def test_without_ground_truth_through_a_spec():
    pipe = load_spec({"length_unit": "words", "shaping": [{"name": "format_length", "max_len": 8, "peak": 0.25}]})
    s = pipe.score([{"prompt_id": "q", "completion": c} for c in ("<think> a b </think> \\boxed{4}", "x y")])
    # 5 words: x = 0.625 -> 1 - 2·(0.375/0.75)² = 0.5; "x y": no format, x = 0.25 -> ℓ = 1 but no answer -> 0
    assert s.total.tolist() == pytest.approx([1.5, 0.0])
    assert np.isnan(s.correct).all()


def test_bad_options_name_the_field():
    with pytest.raises(SpecError, match=r"format_length\)\.peak: Input should be less than 1"):
        load_spec({"shaping": [{"name": "format_length", "peak": 1.0}]})
    with pytest.raises(SpecError, match=r"format_length\)\.answer_from: Input should be"):
        load_spec({"shaping": [{"name": "format_length", "answer_from": "regex"}]})
    with pytest.raises(SpecError, match=r"format_length\)\.max_length: unknown option; allowed: max_len, peak"):
        load_spec({"shaping": [{"name": "format_length", "max_length": 64}]})
