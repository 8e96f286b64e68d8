"""tag_count, reasoning_steps, code_format, per-turn format scoring and the repetition
shaper's lowercase/segmenter options: hand-computed values, edge cases and the ways a
policy would game them. The peers' own test cases are in test_peer_rewards.py."""

import pytest

from rewardsmith import SpecError, load_spec
from rewardsmith.components import build
from rewardsmith.shaping.repetition import cjk_bigram_units

GOOD = "<think>\nplan\n</think>\n<answer>\n4\n</answer>"


def fmt(name, **options):
    return build("format", {"name": name, **options}, field="test")


# --------------------------------------------------------------------------- tag_count
@pytest.mark.parametrize(
    "text,expected",
    [
        (GOOD, 1.0),
        ("", 0.0),
        ("<think>\nplan\n</think>\n", 0.5),
        (GOOD + GOOD, 0.0),  # every tag twice: padding with tags earns nothing
        ("<think>\n<think>\nplan\n</think>\n<answer>\n4\n</answer>", 0.75),
        ("<think>plan</think><answer>4</answer>", 0.0),  # open-r1's tags carry the newlines
    ],
)
def test_tag_count_by_hand(text, expected):
    assert fmt("tag_count").score(text) == expected


def test_tag_count_custom_tags():
    t = fmt("tag_count", think_tag="reasoning", answer_tag="final")
    assert t.score("<reasoning>\nx\n</reasoning>\n<final>\n4\n</final>") == 1.0 and t.score(GOOD) == 0.0


# --------------------------------------------------------------------------- reasoning_steps
@pytest.mark.parametrize(
    "text,expected",
    [
        ("", 0.0),
        ("Step 1: a\nStep 2: b", 2 / 3),
        ("1. a\n2. b\n3. c", 1.0),  # numbered lines anywhere, not only at the very start
        ("Intro\n- a\n* b", 2 / 3),
        ("First, a. Next, b. Finally, c. Second, d.", 1.0),  # capped at 1
    ],
)
def test_reasoning_steps_by_hand(text, expected):
    assert fmt("reasoning_steps").score(text) == pytest.approx(expected)


def test_reasoning_steps_repeated_marker_exploit_and_distinct():
    spam = "Step 1: Step 1: Step 1:"
    assert fmt("reasoning_steps").score(spam) == 1.0  # open-r1 pays it in full
    assert fmt("reasoning_steps", distinct=True).score(spam) == pytest.approx(1 / 3)
    assert fmt("reasoning_steps", min_steps=5).score("1. a\n2. b") == pytest.approx(0.4)


# --------------------------------------------------------------------------- code_format
def code(lang, after=""):
    return f"<think>\nplan\n</think>\n<answer>\n```{lang}\nx = 1\n```\n</answer>{after}"


def test_code_format_languages_and_holes():
    py = fmt("code_format")  # python by default
    assert py.score(code("python")) == 1.0
    assert py.score(code("pythonic")) == 0.0  # not python
    assert py.score(code("python", "\nignore the format")) == 0.0  # nothing after </answer>
    assert py.score(code("")) == 0.0 and py.score("```python\nx\n```") == 0.0
    assert fmt("code_format", language="c++").score(code("c++")) == 1.0  # regex characters are literal
    assert fmt("code_format", language="c").score(code("c++")) == 0.0
    with pytest.raises(SpecError, match="one word"):
        fmt("code_format", language="py thon")


def test_code_format_language_per_record_through_a_spec():
    pipe = load_spec({"format": {"name": "code_format", "mode": "add"}})
    recs = [
        {"prompt_id": "q", "completion": code("javascript"), "meta": {"language": "javascript"}},
        {"prompt_id": "q", "completion": code("javascript")},
        {"prompt_id": "q", "completion": code("python"), "meta": {"language": ["not", "a", "word"]}},
    ]
    assert pipe.score(recs).values["format"].tolist() == [1.0, 0.0, 0.0]


# --------------------------------------------------------------------------- per-turn format
def test_format_is_averaged_over_assistant_turns():
    turns = [
        {"role": "assistant", "content": GOOD},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "no tags"},
    ]
    add = load_spec({"format": {"name": "tag_count", "mode": "add", "weight": 2.0}})
    s = add.score([{"prompt_id": "q", "completion": turns}, {"prompt_id": "q", "completion": turns[:1]}])
    assert s.values["format"].tolist() == [0.5, 1.0] and s.total.tolist() == [1.0, 2.0]
    # as a gate every turn must keep the format; the joined text would pass think_answer's count check otherwise
    gate = load_spec({"verifier": "exact", "format": {"name": "think_answer"}})
    two = [
        {"role": "assistant", "content": "<think>a</think> Answer: 4"},
        {"role": "assistant", "content": "Answer: 4"},
    ]
    s = gate.score([{"prompt_id": "q", "completion": two, "answer": "4"}])
    assert s.values["format"].tolist() == [0.5] and s.total.tolist() == [0.0]


# --------------------------------------------------------------------------- repetition options
def rep(texts, **options):
    pipe = load_spec({"length_unit": "words", "shaping": [{"name": "repetition", "ngram": 2, **options}]})
    return pipe.score([{"prompt_id": "q", "completion": t} for t in texts]).values["repetition"].tolist()


def test_repetition_lowercase_by_default():
    assert rep(["This is this IS"]) == pytest.approx([-1 / 3])  # (this is), (is this), (this is)
    assert rep(["This is this IS"], lowercase=False) == [0.0]


def test_repetition_cjk_segmenters():
    assert cjk_bigram_units("这") == ["这"] and cjk_bigram_units("") == []
    assert cjk_bigram_units("Ab 这个，好") == ["Ab", "这个", "个，", "，好"]
    # no spaces: one "word" for the whitespace split, so no repetition is seen at all
    assert rep(["这个这个这个这个这个"]) == [0.0]
    assert rep(["这个这个这个这个这个"], segmenter="cjk_bigrams") == pytest.approx(
        [-0.75]
    )  # 9 bigram units, 8 pairs, 2 distinct
    pytest.importorskip("jieba")
    assert rep(["这个这个这个这个这个"], segmenter="jieba") == pytest.approx([-0.75])  # 5 words, 4 pairs, 1 distinct


def test_repetition_jieba_missing_is_a_spec_error(monkeypatch):
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "jieba" else real(name, *a, **k),
    )
    with pytest.raises(SpecError, match="jieba package .*'cjk_bigrams' needs nothing"):
        load_spec({"shaping": [{"name": "repetition", "segmenter": "jieba"}]})


# --------------------------------------------------------------------------- side by side with open-r1's code
@pytest.mark.parametrize("seed", range(5))
def test_tag_count_and_repetition_match_open_r1_on_random_text(seed):
    """open-r1@1416fa0 src/open_r1/rewards.py: count_tags and the English repetition penalty,
    re-implemented here, against ours on random mixes of tags and repeated (mixed-case) words."""
    import random

    rng = random.Random(seed)
    pieces = ["<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>", "Word", "word", "WORD", "x", " ", "\n", "y z"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(60)]

    def count_tags(text):
        return sum(0.25 for t in ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>") if text.count(t) == 1)

    def open_r1_repetition(text, n=3, max_penalty=-1.0):
        words = text.lower().split()
        if text == "" or len(words) < n:
            return 0.0
        grams = list(zip(*[words[i:] for i in range(n)]))
        return (1 - len(set(grams)) / len(grams)) * max_penalty

    assert [fmt("tag_count").score(t) for t in texts] == [count_tags(t) for t in texts]
    pipe = load_spec({"length_unit": "words", "shaping": [{"name": "repetition", "ngram": 3}]})
    ours = pipe.score([{"prompt_id": "q", "completion": t} for t in texts]).values["repetition"].tolist()
    assert ours == pytest.approx([open_r1_repetition(t) for t in texts], abs=1e-12)


def test_trl_adapter_keeps_the_turns_of_conversational_completions():
    from rewardsmith.integrations.trl import reward_funcs

    (fn,) = reward_funcs({"format": {"name": "tag_count", "mode": "add"}})
    two_turns = [
        {"role": "assistant", "content": GOOD},
        {"role": "user", "content": "more"},
        {"role": "assistant", "content": "untagged"},
    ]
    assert fn(prompts=["p", "p"], completions=[two_turns, [two_turns[0]]], trainer_state=None) == pytest.approx(
        [0.5, 1.0]
    )
