"""``math``: symbolic equivalence with math-verify, gold first (it is not symmetric).

The answer is extracted in the calling process (last ``\\boxed{}``, ``<answer>``, ``####``,
``Answer:`` — order configurable) and only that short string is parsed, in a worker process
with a hard timeout. An unparseable *reference* scores ``correct=null`` with status
``bad_reference`` — never a free 1.0 (a known open-r1/TRL pitfall).

Example::

    >>> from rewardkit.verifiers.math import MathVerifier
    >>> v = MathVerifier()
    >>> v.check(v.job(r"so \\boxed{\\frac12}", "0.5", {})).score
    1.0
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import extract_answer

Rule = Literal["boxed", "answer_tag", "hash", "answer_colon"]


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
    inner_timeout_s: int = Field(default=3, ge=1, description="math-verify's own (signal) timeout inside the worker")


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
        gold = parse(as_latex(str(job.reference)), parsing_timeout=o.inner_timeout_s)
        if not any(not isinstance(g, str) for g in gold):  # only the raw string back: not parsed
            return Verdict(float("nan"), BAD_REFERENCE, f"reference not parseable: {str(job.reference)[:80]!r}")
        pred = parse(as_latex(job.prediction), parsing_timeout=o.inner_timeout_s)
        if not pred:
            return Verdict(0.0, OK, "prediction not parseable")
        ok = verify(gold, pred, float_rounding=o.float_rounding, numeric_precision=o.numeric_precision, strict=o.strict, timeout_seconds=o.inner_timeout_s)
        return Verdict(1.0 if ok else 0.0, OK)
