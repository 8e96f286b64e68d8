"""Where the answer is read, and unknown staying unknown (issue 10, items 1-2).

Each class of exploit or misreading gets at least two instances; none is the issue's own example.
"""

import math

import pytest

from rewardsmith.verifiers.base import BAD_REFERENCE, NO_ANSWER, OK, TIMEOUT, Job
from rewardsmith.verifiers.choice import ChoiceVerifier
from rewardsmith.verifiers.exact import ExactVerifier, as_number
from rewardsmith.verifiers.extract import answer_region, read_answers, visible_text
from rewardsmith.verifiers.format import ThinkAnswerFormat
from rewardsmith.verifiers.math import MathVerifier, fast_verdict


def math_check(completion, reference, **opts):
    opts.setdefault("inner_timeout_s", 5)  # a loaded machine must not turn a verdict into a timeout
    v = MathVerifier(**opts)
    job = v.job(completion, reference, {})
    return None if job is None else v.check(job)


def math_score(completion, reference, **opts):
    verdict = math_check(completion, reference, **opts)
    return None if verdict is None or verdict.status == NO_ANSWER else verdict.score


# ---------------------------------------------------------------- the reasoning block is never graded
@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        (r"<think>try \boxed{7}</think> So the result is \boxed{8}.", "7", 0.0),
        (r"<think>try \boxed{7}</think> So the result is \boxed{8}.", "8", 1.0),
        ("<think>Answer: 19</think>\nThe total is $\\boxed{21}$", "19", 0.0),
        ("<think>the answer is 3/4</think> Final answer: 0.75", r"\frac34", 1.0),
    ],
)
def test_math_never_reads_inside_the_reasoning_block(completion, reference, expected):
    assert math_score(completion, reference) == expected


def test_reasoning_delimiters_are_configurable():
    text = r"<reasoning>maybe \boxed{5}</reasoning> it is \boxed{6}"
    assert math_score(text, "5", reasoning_delimiters=["<reasoning>", "</reasoning>"]) == 0.0
    assert math_score(text, "6", reasoning_delimiters=["<reasoning>", "</reasoning>"]) == 1.0
    assert math_score(r"<think>\boxed{2}</think>", "2", reasoning_delimiters=None) == 1.0  # off: the tags are just text
    assert ExactVerifier(reasoning_delimiters=["[[", "]]"]).extract("[[Answer: Rome]] Answer: Oslo") == "Oslo"
    from rewardsmith import SpecError

    with pytest.raises(SpecError, match="reasoning_delimiters"):
        MathVerifier(reasoning_delimiters=["<t>", "<t>"])


@pytest.mark.parametrize(
    "completion",
    [
        r"<think>The sum is 12, so \boxed{12}",  # cut off mid-thought
        r"<think>a</think> then <think> again \boxed{12}",  # a second block opened and never closed
        "<think>\nAnswer: 12\n",
    ],
)
def test_unclosed_reasoning_block_has_no_answer(completion):
    assert MathVerifier().job(completion, "12", {}) is None
    assert ExactVerifier().job(completion, "12", {}) is None
    assert ChoiceVerifier().extract(completion.replace("12", "(B)")) is None


@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        (r"compute 6*7 = \boxed{41}? no... </think> The result is \boxed{42}", "41", 0.0),
        (r"compute 6*7 = \boxed{41}? no... </think> The result is \boxed{42}", "42", 1.0),
        ("Answer: 5 maybe\n</think>\nAnswer: 6", "5", 0.0),
    ],
)
def test_closing_tag_alone_marks_everything_before_as_reasoning(completion, reference, expected):
    assert math_score(completion, reference) == expected


def test_answer_region_rules():
    assert answer_region("a</think>b") == "b"
    assert answer_region("<think>a</think>b<think>c") is None
    assert answer_region("plain") == "plain"
    assert answer_region("<think>x") is None


# ---------------------------------------------------------------- hedges and set answers
@pytest.mark.parametrize(
    "completion, reference",
    [
        (r"Either \boxed{12} or \boxed{13}.", "12"),
        (r"Either \boxed{12} or \boxed{13}.", "13"),
        ("Answer: 7\nOn reflection the answer is 8.", "7"),
        ("Answer: 7\nOn reflection the answer is 8.", "8"),
        ("#### 30\nFinal answer: 31", "30"),
        (r"<answer>2</answer> and \boxed{3}", "3"),
    ],
)
def test_several_different_final_answers_are_a_hedge(completion, reference):
    verdict = math_check(completion, reference)
    assert verdict.score == 0.0 and "hedge" in verdict.detail


@pytest.mark.parametrize(
    "completion, reference",
    [
        (r"\boxed{\frac{1}{2}}. Final answer: 0.5", "1/2"),
        (r"The answer is $\boxed{20}$. Answer: 20", "20"),
        (r"\boxed{x^2+1}, i.e. the answer is $1+x^2$.", "x^2+1"),
    ],
)
def test_one_answer_written_twice_is_not_a_hedge(completion, reference):
    assert math_score(completion, reference) == 1.0


@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        (r"The roots are $x=\boxed{2}$ and $x=\boxed{3}$.", r"\{2, 3\}", 1.0),
        (r"The roots are \boxed{-1} and \boxed{4}.", "4, -1", 1.0),
        (r"So $a=\boxed{1}$ and $b=\boxed{5}$.", "(1, 5)", 1.0),
        (r"The roots are \boxed{2} and \boxed{5}.", r"\{2, 3\}", 0.0),  # one part wrong
        (r"\boxed{2}, \boxed{3} and \boxed{4}", r"\{2, 3\}", 0.0),  # k + 1 parts
        (r"\boxed{2} and \boxed{3}", "2", 0.0),  # a single-value reference: a hedge
    ],
)
def test_k_boxed_parts_of_a_k_element_reference(completion, reference, expected):
    assert math_score(completion, reference) == expected


# ---------------------------------------------------------------- text that does not render
@pytest.mark.parametrize(
    "completion",
    [
        "I give up.\n% \\boxed{88}",
        "Hmm. $x = 1$ % Answer: 88\n",
        r"\phantom{\boxed{88}} not sure",
        r"\hphantom{Answer: 88} no idea",
        "<!-- \\boxed{88} --> no idea",
        "\\iffalse \\boxed{88} \\fi no idea",
    ],
)
def test_unrendered_answers_are_not_read(completion):
    assert math_score(completion, "88") != 1.0
    assert ExactVerifier(extract=["boxed", "answer_colon"]).job(completion, "88", {}) is None


@pytest.mark.parametrize(
    "completion, reference",
    [
        (r"The share rose by 15% so the answer is \boxed{4}.", "4"),
        (r"We get \boxed{25\%}", r"25\%"),
        (r"that is 30 % of the total: \boxed{12}", "12"),
    ],
)
def test_percent_signs_are_not_comments(completion, reference):
    assert math_score(completion, reference) == 1.0


def test_visible_text_keeps_what_renders():
    assert visible_text("a % b\nc") == "a \nc"
    assert visible_text(r"50\% off") == r"50\% off"
    assert visible_text(r"x \vphantom{y} z") == "x  z"


# ---------------------------------------------------------------- no marker: math-verify's extraction
@pytest.mark.parametrize(
    "completion, reference",
    [
        ("so the result is $-7$", "-7"),
        ("Adding them gives 4,250.", "4250"),
        ("In total there are 2 500 apples.", "2500"),
        ("The mean is 3000.0", "3000"),
        ("The ticket costs $15.25 in total", "15.25"),
        ("The side is 35 cm.", "35"),
        (r"which gives $\frac{3}{8}$", "0.375"),
    ],
)
def test_no_marker_falls_back_to_math_verify_extraction(completion, reference):
    verdict = math_check(completion, reference)
    assert verdict.score == 1.0 and "no marker" in verdict.detail


def test_fallback_reads_only_the_end_and_only_after_the_reasoning_block():
    early = "The value 17 appears here. " + "Then we keep talking without numbers at all. " * 10
    assert math_score(early, "17") is None  # past fallback_chars: not read
    assert math_score(early, "17", fallback_chars=2000) == 1.0
    assert math_score("<think>it is 9</think> I am not sure.", "9") is None
    assert math_score("no number here", "9", fallback_chars=0) is None


# ---------------------------------------------------------------- word references and unreadable references
@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        (r"\boxed{pots}", "stop", 0.0),
        (r"\boxed{live}", "evil", 0.0),
        (r"\boxed{dusty}", "study", 0.0),
        (r"\boxed{Study}", "study", 1.0),
        (r"Answer: \text{odd}", r"\text{Odd}", 1.0),
        (r"\boxed{yes}", "yes", 1.0),
        (r"\boxed{sey}", "yes", 0.0),
    ],
)
def test_word_references_are_compared_as_text(completion, reference, expected):
    assert math_score(completion, reference) == expected


@pytest.mark.parametrize("reference", ['{"value": 3}', "NaN", "nan", "", "  ", None])
def test_unreadable_references_are_bad_reference(reference):
    verdict = math_check(r"\boxed{3}", reference)
    assert verdict.status == BAD_REFERENCE and verdict.correct is None


def test_unreadable_references_through_the_pipeline():
    from rewardsmith import load_spec

    records = [{"prompt_id": "p", "completion": r"\boxed{3}", "answer": a} for a in ({"x": 3}, float("nan"), "3")]
    with load_spec({"verifier": "math", "length_unit": "chars", "workers": 1}) as pipe:
        scores = pipe.score(records)
    assert list(scores.status) == [BAD_REFERENCE, BAD_REFERENCE, OK]
    assert math.isnan(scores.correct[0]) and math.isnan(scores.correct[1]) and scores.correct[2] == 1.0


# ---------------------------------------------------------------- retractions and a box followed by a different answer
@pytest.mark.parametrize(
    "completion, reference",
    [
        (r"First I got \boxed{30}, but that is wrong; the answer is 31.", "30"),
        (r"$\boxed{5}$. Wait, no: the final answer is 6.", "5"),
        ("\\boxed{9}\nAnswer: 10", "9"),
        (r"$\boxed{x+1}$ Final answer: $x+2$", "x+1"),
    ],
)
def test_a_retracted_or_contradicted_box_is_not_paid(completion, reference):
    assert math_score(completion, reference) == 0.0


@pytest.mark.parametrize(
    "completion",
    [
        r"My \boxed{64} was a mistake.",
        r"Earlier I wrote $\boxed{64}$, which is incorrect.",
        r"The result is not \boxed{64}.",
        "The result is definitely not 64.",
        "so the count isn't $64$",
    ],
)
def test_an_answer_the_text_takes_back_is_not_paid(completion):
    assert math_score(completion, "64") != 1.0


@pytest.mark.parametrize("completion", [r"It is \boxed{64}, not 65.", r"\boxed{64}. It is not 65 as I first thought."])
def test_negating_another_value_keeps_the_answer(completion):
    assert math_score(completion, "64") == 1.0


@pytest.mark.parametrize(
    "completion, reference",
    [
        (r"\boxed{\$25}", "25"),
        (r"It costs \boxed{\$1{,}250.00}.", "1250"),
        (r"\boxed{\$ 3.5}", r"\frac{7}{2}"),
    ],
)
def test_escaped_dollar_inside_a_box(completion, reference):
    assert math_score(completion, reference) == 1.0


# ---------------------------------------------------------------- exact never deletes meaning
@pytest.mark.parametrize(
    "completion, reference",
    [
        ("Answer: 13", "1/3"),
        ("Answer: 34", "3^4"),
        ("Answer: 1/3", "13"),
        ("Answer: 25", "2.5"),
        ("Answer: x1", "x-1"),
        ("Answer: 1 2", "12"),
    ],
)
def test_exact_never_deletes_characters_that_change_meaning(completion, reference):
    v = ExactVerifier()
    assert v.check(v.job(completion, reference, {})).score == 0.0


def test_exact_numbers_and_hedges():
    assert as_number("2 500") == 2500.0 and as_number("1 2") is None and as_number("1000.0") == 1000.0
    v = ExactVerifier()
    assert v.check(v.job("Answer: Lima.", "lima", {})).score == 1.0
    assert v.check(v.job("Answer: 2 500", "2500", {})).score == 1.0
    assert v.check(v.job("<answer>Lima</answer> Answer: Quito", "lima", {})).score == 0.0


# ---------------------------------------------------------------- choice reads the committed option
@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        ("(B), not (D)", "D", 0.0),
        ("(B), not (D)", "B", 1.0),
        ("Definitely not (A); I choose (C).", "A", 0.0),
        ("Definitely not (A); I choose (C).", "C", 1.0),
        ("Answer: (B) or (D)", "B", 0.0),
        ("Answer: (B) or (D)", "D", 0.0),
        ("Answer: B, D", "B", 0.0),
        ("Answer: B/D", "D", 0.0),
        ("Answer: (B) (D)", "B", 0.0),
        ("Answer: B. D is wrong since it is negative.", "B", 1.0),
        (r"\boxed{B} Answer: D", "D", 0.0),
        ("the answer is (B), because (A) and (D) give negative values", "B", 1.0),
        ("The answer is D, as A and B are smaller.", "D", 1.0),
        ("Answer: 2B", "B", None),
        ("We need 3D space, so it is 4A.", "A", None),
        ("<think>(A) looks right</think> I choose (C).", "A", 0.0),
    ],
)
def test_choice_commits_rejects_negations_and_hedges(completion, reference, expected):
    v = ChoiceVerifier(letters="ABCD")
    job = v.job(completion, reference, {})
    assert (None if job is None else v.check(job).score) == expected


def test_choice_hedge_without_a_marker_is_not_paid():
    v = ChoiceVerifier(letters="ABCD")
    for text in [
        "It is (B) or (C).",
        "(A)/(D)",
        "B\nD",
        "(D)\nAnswer: B",
        "<answer>B</answer>\n(D)",
        "The answer is (B) or perhaps (D).",
        "Answer: B, or maybe D",
    ]:
        job = v.job(text, "B", {})
        assert job is None or v.check(job).score == 0.0


# ---------------------------------------------------------------- think_answer shares the delimiters
def test_think_answer_uses_the_reasoning_delimiters():
    fmt = ThinkAnswerFormat(reasoning_delimiters=["<reasoning>", "</reasoning>"])
    assert fmt.score("<reasoning>a</reasoning> 4") == 1.0
    assert fmt.score("<think>a</think> 4") == 0.0


def test_gate_with_answer_tag_grades_only_the_visible_answer():
    from rewardsmith import load_spec

    spec = {
        "verifier": {"name": "math"},
        "format": {"name": "think_answer", "mode": "gate", "answer_tag": True},
        "length_unit": "chars",
        "workers": 1,
    }
    records = [
        {"prompt_id": "p", "completion": r"<think>\boxed{5}</think> <answer>6</answer>", "answer": "5"},
        {"prompt_id": "p", "completion": r"<think>\boxed{5}</think> <answer>6</answer>", "answer": "6"},
    ]
    with load_spec(spec) as pipe:
        scores = pipe.score(records)
    assert list(scores.correct) == [0.0, 1.0]


# ---------------------------------------------------------------- unknown stays unknown
def test_math_verify_internal_timeout_is_timeout_not_false(monkeypatch):
    import math_verify
    from math_verify.errors import TimeoutException

    def slow_verify(*args, **kwargs):
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr(math_verify, "verify", slow_verify)
    verdict = math_check(r"\boxed{\sin^2 x + \cos^2 x}", "1")
    assert verdict.status == TIMEOUT and verdict.correct is None


def test_math_verify_parse_timeout_is_timeout_not_false(monkeypatch):
    import math_verify
    from math_verify.errors import TimeoutException

    def slow_parse(*args, **kwargs):
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr(math_verify, "parse", slow_parse)
    for completion in [r"\boxed{\sqrt{2}\cdot\sqrt{8}}", "so we obtain $e^{i\\pi}+2$"]:  # a box, and the fallback
        verdict = math_check(completion, "4")
        assert verdict.status == TIMEOUT and verdict.correct is None


def test_a_real_slow_comparison_is_timeout():
    verdict = math_check(r"\boxed{\sqrt[\sqrt[\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}", "1")
    assert verdict.correct is None and verdict.status == TIMEOUT


def test_timeouts_are_not_cached():
    from hostile import FlakyTimeoutVerifier
    from rewardsmith.engine import VerificationEngine

    eng = VerificationEngine(workers=1, cache_size=100)
    v = FlakyTimeoutVerifier()
    first = eng.run(v, [Job("7", "7")])[0]
    second = eng.run(v, [Job("7", "7")])[0]
    assert first.status == TIMEOUT and second.status == OK and second.score == 1.0
    assert eng.run(v, [Job("7", "7")])[0].status == OK and eng.stats.cache_hits == 1  # a real verdict is cached


def test_engine_timeouts_are_not_cached():
    from hostile import HostileVerifier
    from rewardsmith.engine import VerificationEngine

    with VerificationEngine(workers=1, timeout_s=0.5) as eng:
        assert eng.run(HostileVerifier(), [Job("sleep1.0", "sleep1.0")])[0].status == TIMEOUT
        eng.timeout_s = 10.0  # the machine is fast again
        assert eng.run(HostileVerifier(), [Job("sleep1.0", "sleep1.0")])[0].score == 1.0


@pytest.mark.parametrize(
    "gold, pred, expected",
    [
        ("2^{4000}", str(2**4000), 1.0),
        (str(3**2500), "3^{2500}", 1.0),
        ("2^{10000}", "4^{5000}", 1.0),
        ("10^{3000}", "100^{1500}", 1.0),
        ("2^{4000}", str(2**4000 + 1), 0.0),
        ("2^{10000}", "2^{10001}", 0.0),
        ("9^{9^{9^{9}}}", "1", 0.0),
        ("9^{9^{9^{9^{9}}}}", "9^{9^{9^{9}}}", 0.0),  # same base: the exponents are compared
        ("10^{10^{100}}", "10^{10^{101}}", 0.0),
        ("10^{10^{100}}", r"\frac{1}{3}", 0.0),
    ],
)
def test_large_numbers_are_compared_exactly(gold, pred, expected):
    assert fast_verdict(gold, pred)[0] == expected
    assert math_score(rf"\boxed{{{pred}}}", gold) == expected


@pytest.mark.parametrize(
    "gold, pred",
    [
        ("9^{9^{9^{9}}}", "3^{2 \\cdot 9^{9^{9}}}"),  # equal, but not a plain tower: not decided
        ("7^{7^{7^{7}}}", "7^{7^{7^{7}}}+0"),
        ("2^{2^{100}}", "4^{2^{99}}"),  # equal, but far too large to write out
    ],
)
def test_large_numbers_that_cannot_be_compared_are_unknown(gold, pred):
    verdict = math_check(rf"\boxed{{{pred}}}", gold)
    assert verdict.correct is None and verdict.status == TIMEOUT


def test_read_answers_order_and_rules():
    found = read_answers("Answer: 3\nthe answer is 4. \\boxed{5} #### 6")
    assert [(a.rule, a.text) for a in found] == [
        ("answer_colon", "3"),
        ("answer_is", "4"),
        ("boxed", "5"),
        ("hash", "6"),
    ]
    assert [a.text for a in read_answers("I hope the answer is correct: \\boxed{2}")] == ["2"]


def test_math_warm_up_only_when_math_verify_is_needed():
    v = MathVerifier()
    assert not v.needs_warm_up(Job("1,000", "1000")) and not v.needs_warm_up(Job(r"\frac{1}{2}", "0.5"))
    assert not v.needs_warm_up(Job("yes", "no")) and not v.needs_warm_up(Job("3", "NaN"))
    assert v.needs_warm_up(Job("x+1", "1+x")) and v.needs_warm_up(Job("so 3", "3", {"fallback": True}))
