"""``math``: symbolic equivalence with math-verify, gold first (it is not symmetric).

Reading (in the calling process, :mod:`rewardsmith.verifiers.extract`): the reasoning block is
skipped (an unclosed one leaves no answer), text that does not render is dropped, and every
final answer the ``extract`` rules find is kept (``\\boxed{}``, ``<answer>``, ``####``,
``Answer:``, “the answer is …”). With no marker at all, math-verify's own extraction (LaTeX and
plain expressions, the last one) reads the last ``fallback_chars`` characters after the
reasoning block — in the worker, under the hard timeout.

Checking (in a worker with a hard timeout):

- several *different* final answers are a hedge: correct only when each equals the reference,
  or when the reference is a set or tuple of k elements and exactly k boxed parts together
  equal it (``\\boxed{3}`` and ``\\boxed{5}`` for ``\\{3, 5\\}``);
- a reference made of words (``yes``, ``listen``, ``\\text{Even}``) is compared as text, never
  parsed as a product of symbols; a reference that cannot be read (empty, NaN, a JSON
  object, or one math-verify cannot parse) is ``bad_reference`` (``correct=null``), never a free 1.0;
- safe cases skip sympy (:func:`fast_verdict`): identical strings after normalisation, plain
  rationals compared exactly, and numbers too large for sympy (power towers): compared by
  magnitude, exactly as integers when feasible, else unknown — never marked wrong unproven;
- math-verify's own timeout gives status ``timeout`` (``correct=null``), never ``false``.

Example::

    >>> from rewardsmith.verifiers.math import MathVerifier
    >>> v = MathVerifier()
    >>> v.check(v.job(r"so \\boxed{\\frac12}", "0.5", {})).score
    1.0
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, NO_ANSWER, OK, TIMEOUT, Job, Verdict, Verifier
from .extract import (
    READING_RULES,
    Delimiters,
    answer_region,
    distinct,
    find_answers,
    read_answers,
    reasoning_delimiters_field,
    unmarked,
    visible_text,
)

Rule = Literal["boxed", "answer_tag", "hash", "answer_colon", "answer_is"]

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_FRAC = re.compile(r"([-+]?)\\[dt]?frac\{([-+]?\d+)\}\{([-+]?\d+)\}")
_SLASH = re.compile(r"([-+]?\d+)/([-+]?\d+)")
_SPACING = re.compile(r"\s+|\\[,;:! ]|\\left|\\right")
_LITERAL = re.compile(r"\d+(?:\.\d+)?")
_HUGE_LOG10 = 1000.0  # numbers with more digits than this never reach sympy
_EXACT_DIGITS = 200_000  # integers up to this many digits are compared exactly
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\{([^{}]*)\}")
_WORD = re.compile(r"[A-Za-z]{2,}(?:[ '\-][A-Za-z]+)*")
_MATH_WORDS = frozenset(
    {"pi", "inf", "infty", "infinity", "oo", "nan", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "emptyset"}
)
_PROSE = re.compile(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}")
_LIST_COMMA = re.compile(r",\s")  # "32, 349" is a list; "32,349" and "32,\! 349" are one number
UNKNOWN = float("nan")
# Parsing, simplification, relations and intervals: what a first comparison would otherwise load
# on an item's clock (over 1 s on a loaded machine).
_WARM_UP = [("$x+1$", "$1+x$"), ("$x>1$", "$(1,\\infty)$")]


class MathTimeout(Exception):
    """math-verify's own (signal) timeout fired: the verdict is unknown."""


def normalise_latex(text: str) -> str:
    """Spacing and sizing commands and ``\\$`` removed, ``\\dfrac``/``\\tfrac`` spelled ``\\frac``, ``{,}``
    thousands dropped."""
    t = _SPACING.sub("", text.strip().strip("$").replace("\\$", ""))
    return t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")


def simple_rational(text: str) -> Fraction | None:
    """``text`` as an exact rational if it is a plain integer, decimal, ``a/b`` or ``\\frac{a}{b}``."""
    if _LIST_COMMA.search(re.sub(r",\\!\s*", ",", text)):
        return None
    t = normalise_latex(text)
    if _NUMBER.fullmatch(t):
        return Fraction(t.replace(",", ""))
    m = _FRAC.fullmatch(t) or _SLASH.fullmatch(t)
    if not m:
        return None
    sign, num, den = ("", *m.groups()) if len(m.groups()) == 2 else m.groups()
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return -value if sign == "-" else value


def power_tower(text: str) -> list[str] | None:
    """The numbers of a plain power tower such as ``9^{9^{9}}`` (``["9", "9", "9"]``), bottom first;
    a plain number is a tower of one; None when ``text`` is anything else."""
    t, parts = normalise_latex(text), []
    while True:
        m = _LITERAL.match(t)
        if not m:
            return None
        parts.append(m.group(0))
        rest = t[m.end() :]
        if not rest:
            return parts
        if not rest.startswith("^"):
            return None
        rest = rest[1:]
        if rest.startswith("{") and rest.endswith("}"):
            t = rest[1:-1]
        elif re.fullmatch(r"\d", rest):
            t = rest
        else:
            return None


def tower_log10(parts: list[str]) -> float:
    """log10 of the tower's value (inf when it does not fit a float)."""
    with localcontext() as ctx:
        ctx.prec = 30
        base = float(Decimal(parts[0]).log10()) if Decimal(parts[0]) > 0 else -math.inf
    if len(parts) == 1:
        return base
    exponent_log10 = tower_log10(parts[1:])
    exponent = 10.0**exponent_log10 if exponent_log10 < 300 else math.inf
    if base == 0.0 or exponent == 0.0:
        return 0.0
    return exponent * base


def power_tower_log10(text: str) -> float | None:
    """log10 of a numeric power tower (inf when astronomically large); None when not a plain tower."""
    parts = power_tower(text)
    return None if parts is None else tower_log10(parts)


def tower_value(parts: list[str]) -> int | None:
    """The tower's exact value when every number is an integer and it has at most ``_EXACT_DIGITS`` digits."""
    if any("." in p for p in parts):
        return None
    value = int(parts[-1])
    for base in map(int, reversed(parts[:-1])):
        if base > 1 and value * math.log10(base) > _EXACT_DIGITS:
            return None
        value = base**value
    return value


def _magnitude(text: str) -> tuple[list[str] | None, Fraction | None, float | None]:
    """(tower numbers, exact rational, log10 of the absolute value) of a plain number or power tower."""
    parts = power_tower(text)
    if parts is not None:
        return parts, None, tower_log10(parts)
    value = simple_rational(text)
    if value is None:
        return None, None, None
    return None, value, -math.inf if value == 0 else math.log10(abs(value.numerator)) - math.log10(value.denominator)


def _same_towers(a: list[str], b: list[str]) -> float:
    """1.0/0.0 when two towers of integers are equal or not, NaN when that cannot be settled here.
    Same integer base ``n >= 2``: ``n^x = n^y`` exactly when ``x = y``, so the bases are peeled off."""
    while len(a) > 1 and len(b) > 1 and a[0] == b[0] and "." not in a[0] and int(a[0]) >= 2:
        a, b = a[1:], b[1:]
    la, lb = tower_log10(a), tower_log10(b)
    if math.isinf(la) or math.isinf(lb):
        if la != lb:
            return 0.0
    elif abs(la - lb) > 1e-9 * max(1.0, abs(la), abs(lb)):
        return 0.0
    va, vb = tower_value(a), tower_value(b)
    if va is None or vb is None:
        return UNKNOWN
    return 1.0 if va == vb else 0.0


def huge_verdict(gold: str, pred: str) -> tuple[float, str] | None:
    """Numbers too large for sympy (over ``_HUGE_LOG10`` digits): different magnitudes are different,
    equal ones are compared exactly as integers, anything else is unknown (NaN). None: not huge."""
    (tg, qg, lg), (tp, qp, lp) = _magnitude(gold), _magnitude(pred)
    if max((x for x in (lg, lp) if x is not None), default=0.0) <= _HUGE_LOG10:
        return None
    if lg is None or lp is None:
        return UNKNOWN, "a number too large for sympy against an expression: not compared"
    if tg is not None and tp is not None:
        same = _same_towers(tg, tp)
    elif math.isinf(lg) or math.isinf(lp) or abs(lg - lp) > 1e-9 * max(1.0, abs(lg), abs(lp)):
        same = 0.0
    else:  # a tower against a rational of the same magnitude: compare exactly when the tower is an integer
        value = tower_value(tg if tg is not None else tp)  # type: ignore[arg-type]
        same = UNKNOWN if value is None else float(value == (qp if tg is not None else qg))
    if math.isnan(same):
        return UNKNOWN, "too large to compare exactly"
    return same, "large numbers compared exactly" if same else "large numbers that differ"


def fast_verdict(gold: str, pred: str) -> tuple[float, str] | None:
    """Decide without sympy when it is safe: identical after normalisation; two plain rationals
    that are equal or clearly apart; numbers too large for sympy (:func:`huge_verdict`; NaN when
    undecidable). None: let math-verify decide."""
    g, p = normalise_latex(gold), normalise_latex(pred)
    if g == p:
        return 1.0, "identical"
    a, b = simple_rational(gold), simple_rational(pred)
    if a is not None and b is not None:
        if a == b:
            return 1.0, "equal rationals"
        if abs(a - b) > Fraction(1, 10_000) * max(1, abs(a)):
            return 0.0, "different rationals"
        return None
    return huge_verdict(gold, pred)


def as_latex(text: str) -> str:
    """A bare answer wrapped in ``$...$`` so math-verify's LaTeX extractor sees all of it
    (``\\$`` currency signs and ``\\!`` thin negative spaces dropped first)."""
    t = text.strip().replace("\\$", "").replace("\\!", "")
    if "$" in t or "\\boxed" in t or "\\(" in t or "\\[" in t:
        return t
    return f"${t}$"


def bad_reference(reference: Any) -> str | None:
    """Why ``reference`` cannot be a math reference (None when it can be read)."""
    if reference is None or not str(reference).strip():
        return "no reference answer"
    t = str(reference).strip()
    if t.casefold() in ("nan", "none", "null"):
        return f"reference is {t!r}"
    if t.startswith("{") and t.endswith("}"):
        try:
            if isinstance(json.loads(t), dict):
                return "reference is a JSON object, not an answer"
        except ValueError:
            pass
    return None


def reference_answer(reference: str) -> str:
    """The answer a reference states: its boxes (a worked solution; several boxes are the parts of one
    answer), else all of it."""
    if "\\boxed" not in reference and "\\fbox" not in reference:
        return reference
    boxes = [a.text for a in find_answers(reference, ["boxed"])]
    return ", ".join(boxes) if boxes else reference


def _plain_words(text: str) -> tuple[str, bool]:
    """``text`` without ``$``, ``\\text{}`` wrappers and outer spaces, and whether it was in ``$…$``."""
    t = text.strip()
    dollars = t.startswith("$") or t.startswith("\\(")
    t = t.strip("$").removeprefix("\\(").removesuffix("\\)").strip()
    m = _TEXT_CMD.fullmatch(t)
    if m:
        return m.group(1).strip(), False
    return t, dollars


def word_reference(reference: str) -> str | None:
    """The reference as casefolded words when it is made of words (``yes``, ``\\text{Even}``), else None."""
    t, in_math = _plain_words(reference)
    t = t.rstrip(".!")
    if in_math or not _WORD.fullmatch(t) or t.casefold() in _MATH_WORDS:
        return None
    return " ".join(t.casefold().split())


def same_words(word: str, answer: str) -> bool:
    t, _ = _plain_words(answer)
    return " ".join(t.strip(".!").casefold().split()) == word


def _reraise_thread_error(exc: Exception) -> None:
    """math-verify's signal timeouts need the main thread: that is a setup error, not an unparseable answer."""
    if isinstance(exc, ValueError) and "thread" in str(exc):
        raise exc


class MathOptions(Options):
    extract: list[Rule] = Field(
        default=list(READING_RULES),
        min_length=1,
        description="answer markers read (every final answer they find counts)",
    )
    reasoning_delimiters: Delimiters = reasoning_delimiters_field()
    fallback_chars: int = Field(
        default=300,
        ge=0,
        le=20_000,
        description="with no marker, math-verify's own extraction reads this many characters "
        "at the end of the answer (0: off)",
    )
    float_rounding: int = Field(default=6, ge=0, le=15, description="decimal places compared for floats")
    numeric_precision: int = Field(default=15, ge=1, le=50)
    strict: bool = Field(default=True, description="math-verify strict mode (variables must match)")
    inner_timeout_s: int = Field(
        default=1,
        ge=1,
        description="math-verify's own (signal) timeout inside the worker; ordinary checks take "
        "~5 ms; firing gives status timeout",
    )


@register(
    "verifier",
    "math",
    "Symbolic math equivalence via math-verify (reference first); reasoning skipped, hedges unpaid.",
    "Math-Verify (HuggingFace, 2025)",
)
class MathVerifier(Verifier):
    Options = MathOptions

    def extract(self, completion: str) -> str | None:
        answers = read_answers(completion, self.options.extract, self.options.reasoning_delimiters)
        return answers[-1].text if answers else None

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        o = self.options
        answers = read_answers(completion, o.extract, o.reasoning_delimiters)
        if answers is None:
            return None  # the reasoning block never closes
        texts = distinct(answers)
        if not texts:
            if not o.fallback_chars:
                return None
            tail = unmarked(visible_text(answer_region(completion, o.reasoning_delimiters) or ""))[-o.fallback_chars :]
            return Job(tail, reference, {"fallback": True}) if tail.strip() else None
        if len(texts) == 1:
            return Job(texts[0], reference)
        return Job(
            texts[-1], reference, {"answers": texts, "boxed": distinct([a for a in answers if a.rule == "boxed"])}
        )

    # ------------------------------------------------------------------ checking (worker)
    def warm_up(self) -> None:
        """Import math-verify and sympy, build the LaTeX parser and load sympy's set, relation and
        simplification code that a first comparison would otherwise load on an item's clock."""
        for gold, pred in _WARM_UP:
            try:
                self._verify(self._parse(gold, "warm-up"), self._parse(pred, "warm-up"))
            except MathTimeout:
                pass

    def needs_warm_up(self, job: Job) -> bool:
        """False when ``job`` is decided without math-verify (bad or word reference, a sympy-free fast path)."""
        if bad_reference(job.reference):
            return False
        reference, meta = reference_answer(str(job.reference)), job.meta or {}
        if word_reference(reference) is not None:
            return False
        answers = meta.get("answers", [job.prediction])
        return bool(meta.get("fallback")) or len(answers) > 1 or fast_verdict(reference, answers[0]) is None

    def check(self, job: Job) -> Verdict:
        why = bad_reference(job.reference)
        if why:
            return Verdict(UNKNOWN, BAD_REFERENCE, why)
        reference, meta = reference_answer(str(job.reference)), job.meta or {}
        answers = meta.get("answers", [job.prediction])
        word = word_reference(reference)
        if word is not None:
            if meta.get("fallback"):  # no marker: only a completion that is just the word answers
                if same_words(word, job.prediction):
                    return Verdict(1.0, OK, "compared as words")
                return Verdict(0.0, NO_ANSWER, "a word reference needs a marked answer (box, Answer:, ...)")
            right = [same_words(word, a) for a in answers]
            return Verdict(
                1.0 if all(right) else 0.0,
                OK,
                "compared as words" + ("" if len(right) == 1 else f"; {len(right)} answers"),
            )
        try:
            return self._check_math(reference, job.prediction, meta, answers)
        except MathTimeout as exc:
            return Verdict(UNKNOWN, TIMEOUT, f"math-verify's own timeout ({self.options.inner_timeout_s}s) while {exc}")

    def _parse(self, text: str, what: str) -> list:
        from math_verify import parse
        from math_verify.errors import TimeoutException

        try:
            return parse(text, parsing_timeout=self.options.inner_timeout_s, raise_on_error=True)
        except TimeoutException:
            raise MathTimeout(f"parsing the {what}") from None
        except Exception as exc:
            _reraise_thread_error(exc)
            return []

    def _verify(self, gold: list, pred: list) -> bool:
        from math_verify import verify
        from math_verify.errors import TimeoutException

        o, timed_out = self.options, False
        for g in gold:
            for p in pred:
                try:
                    if verify(
                        g,
                        p,
                        float_rounding=o.float_rounding,
                        numeric_precision=o.numeric_precision,
                        strict=o.strict,
                        timeout_seconds=o.inner_timeout_s,
                        raise_on_error=True,
                    ):
                        return True
                except TimeoutException:
                    timed_out = True
                except Exception as exc:
                    _reraise_thread_error(exc)
        if timed_out:
            raise MathTimeout("comparing")
        return False

    def _check_math(self, reference: str, prediction: str, meta: dict, answers: list[str]) -> Verdict:
        parsed: list = []

        def gold() -> list:
            if not parsed:
                parsed.append(self._parse(as_latex(reference), "reference"))
            return parsed[0]

        def equal(answer: str) -> tuple[float, str]:
            fast = fast_verdict(reference, answer)
            if fast is not None:
                return fast
            pred = self._parse(as_latex(answer), "answer")
            if _PROSE.search(answer) and "$" not in answer and "\\" not in answer:  # prose after a marker: read it
                pred = self._parse(answer, "answer") or pred
            return (1.0, "") if pred and self._verify(gold(), pred) else (0.0, "" if pred else "answer not parseable")

        def readable() -> bool:
            return any(not isinstance(g, str) for g in gold())  # only the raw string back: not parsed

        if meta.get("fallback"):
            pred = self._parse(prediction, "answer")
            if not pred:
                return Verdict(0.0, NO_ANSWER, "no marked answer, and math-verify's extraction found none")
            if self._verify(gold(), pred):
                return Verdict(1.0, OK, "read by math-verify's extraction (no marker)")
            if not readable():
                return Verdict(UNKNOWN, BAD_REFERENCE, f"reference not parseable: {reference[:80]!r}")
            return Verdict(0.0, OK, "read by math-verify's extraction (no marker)")
        results = [equal(a) for a in answers]
        undecided = [d for s, d in results if math.isnan(s)]
        if all(s == 1.0 for s, _ in results):
            return Verdict(1.0, OK, results[0][1] if len(results) == 1 else f"{len(results)} spellings of one answer")
        if parsed and not readable():
            return Verdict(UNKNOWN, BAD_REFERENCE, f"reference not parseable: {reference[:80]!r}")
        if len(results) == 1:
            return (
                Verdict(results[0][0], OK, results[0][1]) if not undecided else Verdict(UNKNOWN, TIMEOUT, undecided[0])
            )
        boxes = meta.get("boxed", [])
        if self._parts_make_reference(reference, boxes, gold, equal) and all(
            s == 1.0 or a in boxes for a, (s, _) in zip(answers, results)
        ):
            return Verdict(1.0, OK, f"{len(boxes)} boxed parts together equal the reference")
        if undecided:
            return Verdict(UNKNOWN, TIMEOUT, undecided[0])
        return Verdict(0.0, OK, f"hedge: {len(answers)} different final answers")

    @staticmethod
    def _parts_make_reference(reference: str, boxes: list[str], gold, equal) -> bool:
        """True when the reference is a set or tuple of exactly ``len(boxes)`` elements and the boxes together
        equal it."""
        if len(boxes) < 2:
            return False
        from sympy import FiniteSet, Interval, Tuple

        target = next((g for g in gold() if isinstance(g, (FiniteSet, Tuple, Interval))), None)
        size = 2 if isinstance(target, Interval) else None if target is None else len(target.args)
        if size != len(boxes):
            return False
        joined = ", ".join(boxes)
        if isinstance(target, Interval):  # "(1, 5)" reads as an interval: keep the reference's brackets
            t = normalise_latex(reference)
            joined = f"{t[0]}{joined}{t[-1]}"
        elif isinstance(target, Tuple):
            joined = f"({joined})"
        return equal(joined)[0] == 1.0
