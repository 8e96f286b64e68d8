import pytest

from rewardsmith.shaping.repetition import repetition_penalty
from rewardsmith.verifiers.base import BAD_REFERENCE, NO_ANSWER, Job
from rewardsmith.verifiers.choice import ChoiceVerifier
from rewardsmith.verifiers.exact import ExactVerifier, as_number
from rewardsmith.verifiers.extract import extract_answer, last_boxed
from rewardsmith.verifiers.format import ThinkAnswerFormat
from rewardsmith.verifiers.math import MathVerifier


# ---------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    "text, expected",
    [
        (r"first \boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),
        (r"\boxed{a{b}c}", "a{b}c"),
        (r"so \boxed 5 done", "5"),
        (r"\fbox{7}", "7"),
        (r"\boxed{unbalanced", None),
        ("no box here", None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    "text, order, expected",
    [
        ("<answer> 42 </answer>", ["boxed", "answer_tag"], "42"),
        ("work\n#### 1,234\n", ["hash"], "1,234"),
        ("The final answer is: 17\nthanks", ["answer_colon"], "17"),
        ("Answer: 3\nAnswer: 4", ["answer_colon"], "4"),
        (r"<answer>1</answer> \boxed{2}", ["answer_tag", "boxed"], "1"),
        (r"<answer>1</answer> \boxed{2}", ["boxed", "answer_tag"], "2"),
        (r"$\boxed{$x$}$", ["boxed"], "x"),
        ("nothing", ["boxed", "answer_tag", "hash", "answer_colon"], None),
        ("", ["boxed"], None),
        (r"\boxed{}", ["boxed"], None),
    ],
)
def test_extract_answer(text, order, expected):
    assert extract_answer(text, order) == expected


# ---------------------------------------------------------------- math (in-process check)
def math_score(completion, reference, **opts):
    opts.setdefault("inner_timeout_s", 5)  # a loaded machine must not turn a verdict into a timeout
    v = MathVerifier(**opts)
    job = v.job(completion, reference, {})
    return None if job is None else v.check(job)


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("0.5", r"\frac{1}{2}"),
        (r"\frac{1}{2}", "0.5"),
        ("x^2+1", "1+x^2"),
        (r"\{2, 1\}", r"\{1,2\}"),
        ("[1,2)", r"[1, 2)"),
        (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2"),
        (r"5\text{ cm}", "5"),
        ("1,000", "1000"),
        (r"2\pi", r"2 \pi"),
    ],
)
def test_math_equivalent_forms(pred, gold):
    assert math_score(rf"thinking... \boxed{{{pred}}}", gold).score == 1.0


@pytest.mark.parametrize(
    "pred, gold",
    [("0.51", r"\frac{1}{2}"), ("x^2-1", "x^2+1"), (r"\{1,3\}", r"\{1,2\}"), ("(1,2)", "[1,2]"), ("3", "-3")],
)
def test_math_wrong_answers(pred, gold):
    assert math_score(rf"\boxed{{{pred}}}", gold).score == 0.0


def test_math_no_answer_and_empty_completion():
    assert math_score("I am not sure.", "1").status == NO_ANSWER  # math-verify's extraction finds nothing either
    assert math_score("I am not sure.", "1", fallback_chars=0) is None
    assert math_score("", "1") is None


def test_math_unparseable_reference_is_unknown_not_free():
    for gold in [r"\frac{", "", "   "]:
        verdict = math_score(r"\boxed{1}", gold)
        assert verdict.status == BAD_REFERENCE and verdict.correct is None


def test_math_reference_is_first_argument():
    # math-verify is not symmetric: verify(gold=x>1, pred=(1,oo)) is True, the reverse is False.
    assert math_score(r"\boxed{(1,\infty)}", "x>1").score == 1.0
    assert math_score(r"\boxed{x>1}", r"(1,\infty)").score == 0.0


def test_math_options_validated():
    from rewardsmith import SpecError

    with pytest.raises(SpecError, match=r"math\)?\.extract"):
        MathVerifier(extract=["boxed", "nope"])


# ---------------------------------------------------------------- exact
@pytest.mark.parametrize(
    "completion, reference, opts, expected",
    [
        ("Answer: Paris.", "paris", {}, 1.0),
        ("Answer: PARIS", "paris", {"case_sensitive": True}, 0.0),
        ("Answer: New   York", "new york", {}, 1.0),
        ("#### 1,000", "1000", {}, 1.0),
        ("#### 50%", "0.5", {}, 1.0),
        ("#### 3.14", "3.14159", {}, 0.0),
        ("#### 3.14", "3.14159", {"abs_tol": 0.01}, 1.0),
        ("#### 100", "101", {"rel_tol": 0.02}, 1.0),
        (r"\boxed{\text{yes}}", "Yes", {}, 1.0),
        ("just text", "just text", {}, 1.0),
        ("just text", "just text", {"extract": ["boxed"]}, None),
    ],
)
def test_exact(completion, reference, opts, expected):
    v = ExactVerifier(**opts)
    job = v.job(completion, reference, {})
    assert (None if job is None else v.check(job).score) == expected


def test_exact_number_parsing():
    assert as_number("-1,234.5") == -1234.5
    assert as_number("12%") == 0.12
    assert as_number("1e3") == 1000.0
    assert as_number("12,34") is None and as_number("abc") is None and as_number("") is None


def test_exact_missing_reference_is_unknown():
    v = ExactVerifier()
    assert v.check(Job("x", None)).correct is None


# ---------------------------------------------------------------- choice
@pytest.mark.parametrize(
    "completion, expected",
    [
        (r"... \boxed{B}", "B"),
        ("The answer is (c).", "C"),
        ("Answer: D", "D"),
        ("<answer>(a)</answer>", "A"),
        ("I think B. Final: C.", "C"),
        ("A and B are both plausible but neither", None),
    ],
)
def test_choice_extraction(completion, expected):
    assert ChoiceVerifier(letters="ABCD").extract(completion) == expected


def test_choice_scoring_and_bad_reference():
    v = ChoiceVerifier(letters="ABCD")
    assert v.check(v.job("Answer: (B)", "(B)", {})).score == 1.0
    assert v.check(v.job("Answer: (B)", "C", {})).score == 0.0
    assert v.check(v.job("Answer: (B)", "Z", {})).status == BAD_REFERENCE


def test_choice_letters_validated():
    from rewardsmith import SpecError

    with pytest.raises(SpecError, match="letters"):
        ChoiceVerifier(letters="AAB")


# ---------------------------------------------------------------- reasoning-gym
def test_reasoning_gym_delegates_to_its_scorer():
    rg = pytest.importorskip("reasoning_gym")
    from rewardsmith.verifiers.reasoning_gym import ReasoningGymVerifier

    entry = rg.create_dataset("basic_arithmetic", size=1, seed=3)[0]
    v = ReasoningGymVerifier()
    right = v.job(f"<think>...</think><answer>{entry['answer']}</answer>", entry["answer"], {"entry": entry})
    wrong = v.job("<answer>123456789</answer>", entry["answer"], {"metadata": entry["metadata"]})
    assert v.check(right).score == 1.0
    assert v.check(wrong).score == 0.0
    assert v.check(v.job("<answer>1</answer>", "1", {})).status == BAD_REFERENCE


# ---------------------------------------------------------------- format and repetition
@pytest.mark.parametrize(
    "text, opts, expected",
    [
        ("<think>a</think> 4", {}, 1.0),
        ("<think>a</think>", {}, 0.0),
        ("pre <think>a</think> 4", {}, 0.0),
        ("<think>a</think><think>b</think> 4", {}, 0.0),
        ("a</think> 4", {}, 0.0),
        ("a</think> 4", {"think_in_prompt": True}, 1.0),
        ("<think>a</think> <answer>4</answer>", {"answer_tag": True}, 1.0),
        ("<think>a</think> 4", {"answer_tag": True}, 0.0),
        ("<think>a</think> <answer> </answer>", {"answer_tag": True}, 0.0),
        ("", {}, 0.0),
    ],
)
def test_think_answer(text, opts, expected):
    assert ThinkAnswerFormat(**opts).score(text) == expected


def test_repetition_penalty_hand_computed():
    # "a b a b a b": 5 bigrams, 2 distinct -> -(1 - 2/5) = -0.6
    assert repetition_penalty(["a", "b", "a", "b", "a", "b"], 2, -1.0) == pytest.approx(-0.6)
    assert repetition_penalty(["a", "b", "c", "d"], 2, -1.0) == 0.0
    assert repetition_penalty(["a"], 3, -1.0) == 0.0
    assert repetition_penalty([7, 7, 7, 7], 1, -0.5) == pytest.approx(-0.5 * 0.75)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("We need to answer: what is 77 km?", None),  # prose, not an answer (a reward-hacking route)
        ("I will answer: 5", None),
        ("**Answer:** 5", "5"),
        ("<think>x</think> Answer: 4", "4"),
        ("Done. Final answer: 6", "6"),
        ("Answer: " + "words " * 30, None),  # > 100 characters: prose
    ],
)
def test_answer_colon_only_where_a_sentence_starts(text, expected):
    assert extract_answer(text, ["answer_colon"]) == expected


def test_fast_paths_agree_with_math_verify():
    from rewardsmith.verifiers.math import fast_verdict, power_tower_log10, simple_rational

    assert simple_rational("1,024") == 1024 and simple_rational(r"-\frac{1}{2}") == -0.5
    assert simple_rational(r"\dfrac{3}{4}") == simple_rational("0.75") == simple_rational("6/8")
    assert simple_rational(r"\frac{1}{0}") is None and simple_rational("x") is None
    assert power_tower_log10("2^{10}") == pytest.approx(3.0103, abs=1e-4)
    assert power_tower_log10("10^{10^{100}}") == pytest.approx(1e100)
    assert power_tower_log10("x^{2}") is None
    assert fast_verdict("0.5", r"\frac{1}{2}") == (1.0, "equal rationals")
    assert fast_verdict("0.5", "0.51")[0] == 0.0
    assert fast_verdict(r"\left( 1 , 2 \right)", "(1,2)")[0] == 1.0
    assert fast_verdict("0.3333333", r"\frac{1}{3}") is None  # close call: math-verify decides
    assert fast_verdict("x^2+1", "1+x^2") is None
    # the same decisions as math-verify itself, which the fast path only short-cuts
    for gold, pred in [
        ("0.5", r"\frac{1}{2}"),
        ("0.5", "0.51"),
        ("1024", "1,024"),
        ("-3", "3"),
        (r"\frac{6}{8}", "0.75"),
    ]:
        fast = fast_verdict(gold, pred)[0]
        v = MathVerifier()
        gold_parsed = __import__("math_verify").parse(f"${gold}$")
        pred_parsed = __import__("math_verify").parse(f"${pred}$")
        assert fast == float(__import__("math_verify").verify(gold_parsed, pred_parsed)), (gold, pred)
        assert v.check(Job(pred, gold)).score == fast


def test_astronomical_tower_is_decided_at_once():
    import time

    v = MathVerifier()
    t0 = time.perf_counter()
    assert v.check(Job("9^{9^{9^{9^{9}}}}", "1")).score == 0.0
    assert v.check(Job("10^{10^{100}}", "10^{10^{100}}")).score == 1.0
    assert time.perf_counter() - t0 < 5  # generous bound; without the screen this burns the timeout
