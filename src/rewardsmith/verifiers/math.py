"""``math``: symbolic equivalence with math-verify, gold first (it is not symmetric).

The answer is extracted in the calling process (last ``\\boxed{}``, ``<answer>``, ``####``,
``Answer:`` — order configurable) and only that short string is checked, in a worker process
with a hard timeout. Safe cases skip sympy (:func:`fast_verdict`): identical strings after
normalisation, plain rationals compared exactly, and astronomically large power towers. An unparseable *reference* scores ``correct=null`` with status
``bad_reference`` — never a free 1.0 (a known open-r1/TRL pitfall).

Example::

    >>> from rewardsmith.verifiers.math import MathVerifier
    >>> v = MathVerifier()
    >>> v.check(v.job(r"so \\boxed{\\frac12}", "0.5", {})).score
    1.0
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import extract_answer

Rule = Literal["boxed", "answer_tag", "hash", "answer_colon"]


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_FRAC = re.compile(r"([-+]?)\\[dt]?frac\{([-+]?\d+)\}\{([-+]?\d+)\}")
_SLASH = re.compile(r"([-+]?\d+)/([-+]?\d+)")
_SPACING = re.compile(r"\s+|\\[,;:! ]|\\left|\\right")
_HUGE_LOG10 = 1000.0  # powers with more digits than this are never evaluated


def normalise_latex(text: str) -> str:
    """Spacing and sizing commands removed, ``\\dfrac``/``\\tfrac`` spelled ``\\frac``, ``{,}`` thousands dropped."""
    t = _SPACING.sub("", text.strip().strip("$"))
    return t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")


def simple_rational(text: str) -> Fraction | None:
    """``text`` as an exact rational if it is a plain integer, decimal, ``a/b`` or ``\\frac{a}{b}``."""
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


def power_tower_log10(text: str) -> float | None:
    """log10 of a numeric power tower such as ``9^{9^{9}}`` (inf when astronomically large);
    None when ``text`` is not a plain tower of numbers."""
    t = normalise_latex(text)
    m = re.match(r"\d+(?:\.\d+)?", t)
    if not m:
        return None
    base, rest = float(m.group(0)), t[m.end():]
    if not rest:
        return math.log10(base) if base > 0 else -math.inf
    if not rest.startswith("^"):
        return None
    rest = rest[1:]
    inner = rest[1:-1] if rest.startswith("{") and rest.endswith("}") else rest if re.fullmatch(r"\d", rest) else None
    exp_log10 = None if inner is None else power_tower_log10(inner)
    if exp_log10 is None:
        return None
    if base <= 1:
        return 0.0 if base == 1 else -math.inf
    return (10.0 ** exp_log10 if exp_log10 < 300 else math.inf) * math.log10(base)


def fast_verdict(gold: str, pred: str) -> tuple[float, str] | None:
    """Decide without sympy when it is safe: identical after normalisation; two plain rationals
    that are equal or clearly apart; astronomically large power towers (compared as strings,
    since evaluating them only burns the timeout). None: let math-verify decide."""
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
    for side in (gold, pred):
        size = power_tower_log10(side)
        if size is not None and size > _HUGE_LOG10:
            return 0.0, "astronomical power tower (not evaluated); strings differ"
    return None


def as_latex(text: str) -> str:
    """Wrap a bare answer in ``$...$`` so math-verify's LaTeX extractor sees all of it."""
    t = text.strip()
    if "$" in t or "\\boxed" in t or "\\(" in t or "\\[" in t:
        return t
    return f"${t}$"


class MathOptions(Options):
    extract: list[Rule] = Field(default=["boxed", "answer_tag", "hash", "answer_colon"], min_length=1, description="extraction rules, tried in order")
    float_rounding: int = Field(default=6, ge=0, le=15, description="decimal places compared for floats")
    numeric_precision: int = Field(default=15, ge=1, le=50)
    strict: bool = Field(default=True, description="math-verify strict mode (variables must match)")
    inner_timeout_s: int = Field(default=1, ge=1, description="math-verify's own (signal) timeout inside the worker; ordinary checks take ~5 ms")


@register("verifier", "math", "Symbolic math equivalence via math-verify (reference first), boxed/answer-tag extraction.", "Math-Verify (HuggingFace, 2025)")
class MathVerifier(Verifier):
    Options = MathOptions

    def extract(self, completion: str) -> str | None:
        return extract_answer(completion, self.options.extract)

    def check(self, job: Job) -> Verdict:
        from math_verify import parse, verify

        o = self.options
        if job.reference is None or not str(job.reference).strip():
            return Verdict(float("nan"), BAD_REFERENCE, "no reference answer")
        fast = fast_verdict(str(job.reference), job.prediction)
        if fast is not None:
            return Verdict(fast[0], OK, fast[1])
        gold = parse(as_latex(str(job.reference)), parsing_timeout=o.inner_timeout_s)
        if not any(not isinstance(g, str) for g in gold):  # only the raw string back: not parsed
            return Verdict(float("nan"), BAD_REFERENCE, f"reference not parseable: {str(job.reference)[:80]!r}")
        pred = parse(as_latex(job.prediction), parsing_timeout=o.inner_timeout_s)
        if not pred:
            return Verdict(0.0, OK, "prediction not parseable")
        ok = verify(gold, pred, float_rounding=o.float_rounding, numeric_precision=o.numeric_precision, strict=o.strict, timeout_seconds=o.inner_timeout_s)
        return Verdict(1.0 if ok else 0.0, OK)
