"""``exact``: normalised string match with optional numeric tolerance.

Reading is the shared one (:mod:`rewardsmith.verifiers.extract`): the reasoning block is never
read, unrendered text is dropped, and several *different* final answers are a hedge (correct
only when each matches). ``whole`` (last in ``extract``) reads the whole text after the
reasoning block when no marker is found.

Normalisation never deletes a character inside the answer: case folding and whitespace
collapsing (each switchable), surrounding ``$``/``\\text{}`` and, with ``strip_punctuation``,
punctuation at the *ends* only (``Paris.`` is ``paris``; ``1/2`` stays ``1/2``, never ``12``;
``2^10`` never ``210``). When both sides read as numbers (``1,000``, ``1 000``, ``-3.50``,
``12%``, ``1000.0``) they are compared as numbers within ``rel_tol``/``abs_tol``.

    >>> from rewardsmith.verifiers.exact import ExactVerifier
    >>> v = ExactVerifier()
    >>> v.check(v.job("Answer: Paris.", "paris", {})).score
    1.0
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import (
    READING_RULES,
    Delimiters,
    answer_region,
    distinct,
    read_answers,
    reasoning_delimiters_field,
    visible_text,
)

_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?(e[-+]?\d+)?%?$", re.IGNORECASE)
_SPACED_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?%?")
_TEXT_WRAP = re.compile(r"\\text\{([^{}]*)\}")
# Sentence punctuation and Markdown emphasis only: brackets, signs, primes and a leading "." carry meaning.
_TRAILING = '.,;:!?"`*\u3002\uff0c\uff1a'
_LEADING = ',;:!?"`*\uff1a'


def as_number(text: str) -> float | None:
    """``text`` as a float if it is a plain number (thousands commas or spaces and a trailing % allowed)."""
    t = text.strip()
    if _SPACED_THOUSANDS.fullmatch(t):
        t = t.replace(" ", "")
    if not t or not _NUMBER.match(t) or not any(c.isdigit() for c in t):
        return None
    pct = t.endswith("%")
    value = float(t.rstrip("%").replace(",", ""))
    return value / 100.0 if pct else value


class ExactOptions(Options):
    extract: list[Literal["boxed", "answer_tag", "hash", "answer_colon", "answer_is", "whole"]] = Field(
        default=[*READING_RULES, "whole"],
        min_length=1,
        description="answer markers read; 'whole' uses the whole text after the reasoning block when no marker "
        "is found",
    )
    case_sensitive: bool = False
    strip_punctuation: bool = Field(
        default=True, description="strip punctuation at the ends of both answers (never inside)"
    )
    reasoning_delimiters: Delimiters = reasoning_delimiters_field()
    rel_tol: float = Field(default=0.0, ge=0.0, description="relative tolerance when both sides are numbers")
    abs_tol: float = Field(default=0.0, ge=0.0, description="absolute tolerance when both sides are numbers")


@register("verifier", "exact", "Normalised exact string match (case, whitespace, punctuation) with numeric tolerance.")
class ExactVerifier(Verifier):
    Options = ExactOptions
    isolate = False  # bounded, regex-free comparison: cheap and cannot hang

    def _answers(self, completion: str) -> list[str] | None:
        rules = [r for r in self.options.extract if r != "whole"]
        delimiters = self.options.reasoning_delimiters
        answers = read_answers(completion, rules, delimiters)
        if answers is None:
            return None  # the reasoning block never closes
        texts = distinct(answers)
        if not texts and "whole" in self.options.extract:
            whole = visible_text(answer_region(completion, delimiters) or "").strip()
            texts = [whole] if whole else []
        return texts

    def extract(self, completion: str) -> str | None:
        texts = self._answers(completion)
        return texts[-1] if texts else None

    def job(self, completion: str, reference: str | None, meta: dict) -> Job | None:
        texts = self._answers(completion)
        if not texts:
            return None
        return Job(texts[-1], reference, None if len(texts) == 1 else {"answers": texts})

    def normalise(self, text: str) -> str:
        t = _TEXT_WRAP.sub(r"\1", text.strip().strip("$"))
        if not self.options.case_sensitive:
            t = t.casefold()
        if self.options.strip_punctuation:
            t = t.strip().lstrip(_LEADING).rstrip(_TRAILING).strip()
        return " ".join(t.split())

    def _same(self, prediction: str, reference: str) -> bool:
        pred, ref = self.normalise(prediction), self.normalise(reference)
        a, b = as_number(pred), as_number(ref)
        if a is not None and b is not None:
            return math.isclose(a, b, rel_tol=self.options.rel_tol, abs_tol=self.options.abs_tol)
        return pred == ref

    def check(self, job: Job) -> Verdict:
        if job.reference is None or not str(job.reference).strip():
            return Verdict(float("nan"), BAD_REFERENCE, "no reference answer")
        answers = (job.meta or {}).get("answers", [job.prediction])
        if all(self._same(a, str(job.reference)) for a in answers):
            return Verdict(1.0, OK)
        return Verdict(0.0, OK, f"hedge: {len(answers)} different final answers" if len(answers) > 1 else "")
