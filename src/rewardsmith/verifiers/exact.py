"""``exact``: normalised string match with optional numeric tolerance.

Normalisation (each switchable): case folding, whitespace collapsing, stripping punctuation
and surrounding ``$``/``\\text{}``. When both sides read as numbers (``1,000``, ``-3.50``,
``12%``) they are compared as numbers within ``rel_tol``/``abs_tol``.

    >>> from rewardsmith.verifiers.exact import ExactVerifier
    >>> v = ExactVerifier()
    >>> v.check(v.job("Answer: Paris.", "paris", {})).score
    1.0
"""

from __future__ import annotations

import math
import re
import string
from typing import Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import extract_answer

_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?(e[-+]?\d+)?%?$", re.IGNORECASE)
_TEXT_WRAP = re.compile(r"\\text\{([^{}]*)\}")
_PUNCT = str.maketrans("", "", string.punctuation.replace("-", "").replace(".", "").replace("%", "").replace(",", ""))


def as_number(text: str) -> float | None:
    """``text`` as a float if it is a plain number (thousands commas and a trailing % allowed)."""
    t = text.strip().replace(" ", "")
    if not t or not _NUMBER.match(t) or not any(c.isdigit() for c in t):
        return None
    pct = t.endswith("%")
    value = float(t.rstrip("%").replace(",", ""))
    return value / 100.0 if pct else value


class ExactOptions(Options):
    extract: list[Literal["boxed", "answer_tag", "hash", "answer_colon", "whole"]] = Field(
        default=["boxed", "answer_tag", "hash", "answer_colon", "whole"], min_length=1,
        description="extraction rules in order; 'whole' uses the whole completion")
    case_sensitive: bool = False
    strip_punctuation: bool = True
    rel_tol: float = Field(default=0.0, ge=0.0, description="relative tolerance when both sides are numbers")
    abs_tol: float = Field(default=0.0, ge=0.0, description="absolute tolerance when both sides are numbers")


@register("verifier", "exact", "Normalised exact string match (case, whitespace, punctuation) with numeric tolerance.")
class ExactVerifier(Verifier):
    Options = ExactOptions
    isolate = False  # bounded, regex-free comparison: cheap and cannot hang

    def extract(self, completion: str) -> str | None:
        rules = [r for r in self.options.extract if r != "whole"]
        found = extract_answer(completion, rules) if rules else None
        if found is None and "whole" in self.options.extract and completion.strip():
            return completion.strip()
        return found

    def normalise(self, text: str) -> str:
        t = _TEXT_WRAP.sub(r"\1", text.strip().strip("$"))
        if not self.options.case_sensitive:
            t = t.casefold()
        if self.options.strip_punctuation:
            t = t.translate(_PUNCT).rstrip(".,")
        return " ".join(t.split())

    def check(self, job: Job) -> Verdict:
        if job.reference is None or not str(job.reference).strip():
            return Verdict(float("nan"), BAD_REFERENCE, "no reference answer")
        pred, ref = self.normalise(job.prediction), self.normalise(str(job.reference))
        a, b = as_number(pred), as_number(ref)
        if a is not None and b is not None:
            same = math.isclose(a, b, rel_tol=self.options.rel_tol, abs_tol=self.options.abs_tol)
            return Verdict(1.0 if same else 0.0, OK)
        return Verdict(1.0 if pred == ref else 0.0, OK)
