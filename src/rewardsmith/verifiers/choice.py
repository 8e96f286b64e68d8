"""``choice``: multiple-choice letter extraction and comparison.

Finds the chosen letter in ``\\boxed{B}``, ``Answer: (B)``, ``<answer>B</answer>``, or a final
``(B)`` / ``B.`` / ``B)`` in the completion (the last one wins) and compares it with the
reference letter (``"B"`` or ``"(B)"``).

    >>> from rewardsmith.verifiers.choice import ChoiceVerifier
    >>> v = ChoiceVerifier()
    >>> v.check(v.job("... so the answer is (c).", "C", {})).score
    1.0
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import extract_answer


class ChoiceOptions(Options):
    letters: str = Field(default="ABCDEFGHIJ", min_length=2, description="the allowed option letters")

    @field_validator("letters")
    @classmethod
    def _letters(cls, v: str) -> str:
        if not v.isalpha() or len(set(v.upper())) != len(v):
            raise ValueError("letters must be distinct letters, e.g. 'ABCD'")
        return v.upper()


@register("verifier", "choice", "Multiple-choice letter extraction (boxed, 'Answer: (B)', final '(B)') and match.")
class ChoiceVerifier(Verifier):
    Options = ChoiceOptions
    isolate = False

    def _letter(self, text: str) -> str | None:
        letters = self.options.letters
        t = text.strip()
        m = re.fullmatch(rf"\(?\s*([{letters}{letters.lower()}])\s*[).:]?", t)
        if m:
            return m.group(1).upper()
        found = None
        for found in re.finditer(rf"(?<![A-Za-z])\(?([{letters}{letters.lower()}])\)(?![A-Za-z])|\(([{letters}{letters.lower()}])\)|(?<![A-Za-z])([{letters}])(?:[.:]|$)(?!\w)", t):
            pass
        if found is None:
            return None
        return next(g for g in found.groups() if g).upper()

    def extract(self, completion: str) -> str | None:
        inner = extract_answer(completion, ["boxed", "answer_tag", "answer_colon"])
        if inner is not None:
            letter = self._letter(inner)
            if letter:
                return letter
        return self._letter(completion)

    def check(self, job: Job) -> Verdict:
        ref = self._letter(str(job.reference or ""))
        if ref is None:
            return Verdict(float("nan"), BAD_REFERENCE, f"reference is not one of {self.options.letters}: {job.reference!r}")
        return Verdict(1.0 if job.prediction == ref else 0.0, OK)
