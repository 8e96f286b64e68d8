"""``choice``: multiple-choice letter extraction and comparison.

Reads the option the text *commits to*, after the reasoning block (shared reading,
:mod:`rewardsmith.verifiers.extract`):

1. a marked answer — ``\\boxed{B}``, ``<answer>B</answer>``, ``Answer: (B)``, “the answer is
   (B), since (A) and (C) are too small” — whose value starts with one option (``B``, ``(B)``,
   ``B)``, ``B.``, ``**B**``); the reasons after it are not read;
2. with no marked answer, the last option the text names (``(B)``, ``B.``, ``B)``, ``option B``)
   that is not negated (“not (C)”, “rather than C”, “C is wrong”).

An option is a letter standing alone: ``1C`` or ``Cat`` is never ``C``. Two different options
(“A or C”, ``\\boxed{A}`` then ``Answer: C``, “(A)/(C)”) are a hedge and score 0.

    >>> from rewardsmith.verifiers.choice import ChoiceVerifier
    >>> v = ChoiceVerifier()
    >>> v.check(v.job("... so the answer is (c).", "C", {})).score
    1.0
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, field_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import Delimiters, answer_region, find_answers, reasoning_delimiters_field, visible_text

HEDGE = "hedge:"  # prefix of the prediction when the text names several options
_MARKERS = ("boxed", "answer_tag", "answer_colon", "answer_is")
_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnor|\bneither|\brather\s+than|\binstead\s+of|\bexcept|\bexclud\w*|\bwithout"
    r"|\brule\s+out)"
    r"(?:\s+(?:option|choice|answer))?\s*$",
    re.IGNORECASE,
)
_NEGATED_AFTER = re.compile(
    r"^\s*(?:is|are|was|seems?)\s+(?:not|wrong|incorrect|false|impossible|ruled\s+out)\b", re.IGNORECASE
)


@lru_cache(maxsize=32)
def _patterns(up: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(a marked value, an option named in prose, any standalone option) for the letters ``up``."""
    both = up + up.lower()
    # a marked value: the option first, decorated, then nothing that continues a word
    value = re.compile(
        rf"[\s*_]*(?:\(\s*([{both}])\s*\)|\[([{both}])\]|([{both}])(?:\s*[).:]|(?=[\s*,;!/|&]|$)))"
        rf"(?![A-Za-z0-9])[\s*_.,;:!]*(.*)",
        re.DOTALL,
    )
    # an option named in prose: "(B)", "(b)", "B.", "B)", "option B"; never inside a word or number
    named = re.compile(
        rf"\(([{both}])\)|(?<![A-Za-z0-9(])([{up}])(?:[.)]|:(?!\w))(?!\w)|"
        rf"\b(?i:option|choice)\s+\(?([{both}])\b\)?"
    )
    any_option = re.compile(rf"(?<![A-Za-z0-9])\(?([{up}])\)?(?![A-Za-z0-9])")
    return value, named, any_option


@lru_cache(maxsize=32)
def _bare_lines(up: str) -> re.Pattern[str]:
    """A line holding nothing but one option: ``(C)``, ``C``, ``C.``, ``**C**``."""
    return re.compile(rf"^[ \t*>-]*\(?([{up}])\)?[.:]?[ \t*]*$", re.MULTILINE)


class ChoiceOptions(Options):
    letters: str = Field(default="ABCDEFGHIJ", min_length=2, description="the allowed option letters")
    reasoning_delimiters: Delimiters = reasoning_delimiters_field()

    @field_validator("letters")
    @classmethod
    def _letters(cls, v: str) -> str:
        if not v.isalpha() or len(set(v.upper())) != len(v):
            raise ValueError("letters must be distinct letters, e.g. 'ABCD'")
        return v.upper()


@register(
    "verifier",
    "choice",
    "Multiple-choice option the text commits to (boxed, 'Answer: (B)', final '(B)'); hedges and negations unpaid.",
)
class ChoiceVerifier(Verifier):
    Options = ChoiceOptions
    isolate = False

    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        return _patterns(self.options.letters)

    def letter(self, text: str) -> str | None:
        """The option ``text`` states when it is just an option (``B``, ``(b)``, ``B.``); else None."""
        value, _, _ = self._patterns()
        m = value.fullmatch(text.strip())
        if not m or m.group(4).strip():
            return None
        return next(g for g in m.groups()[:3] if g).upper()

    def _committed(self, text: str) -> str | None:
        """The option a marked answer's value starts with; a hedge when it names another one too."""
        value, _, any_option = self._patterns()
        m = value.match(text.strip())
        if not m:
            return None
        first = next(g for g in m.groups()[:3] if g).upper()
        rest = m.group(4).strip()
        # "A or C", "A/C", "A, C", "(A) (C)": another option right after the first one, not negated
        other = re.match(
            rf"(?:(?:or|and|and/or|&|/|\||,)\s*(?:(?:maybe|perhaps|possibly|even|also)\s+)?)?"
            rf"\(?([{self.options.letters}])\)?(?![A-Za-z0-9])",
            rest,
            re.IGNORECASE,
        )
        if other and other.group(1).upper() != first and not _NEGATED_AFTER.match(rest[other.end() :]):
            return HEDGE + ",".join(sorted({first, other.group(1).upper()}))
        return first

    def _named(self, text: str) -> str | None:
        """The last option named in prose that is not negated; a hedge for "X or Y"."""
        _, named, _ = self._patterns()
        last: tuple[str, int, int] | None = None
        for m in named.finditer(text):
            letter = next(g for g in m.groups() if g).upper()
            if _NEGATION.search(text[max(0, m.start() - 25) : m.start()]) or _NEGATED_AFTER.match(
                text[m.end() : m.end() + 30]
            ):
                continue
            if last is not None:
                between = text[last[2] : m.start()]
                if letter != last[0] and re.fullmatch(r"\s*(?:,?\s*or|/|\|)\s*", between, re.IGNORECASE):
                    return HEDGE + ",".join(sorted({last[0], letter}))
            last = (letter, m.start(), m.end())
        return None if last is None else last[0]

    def extract(self, completion: str) -> str | None:
        region = answer_region(completion, self.options.reasoning_delimiters)
        if region is None:
            return None  # the reasoning block never closes
        text = visible_text(region)
        picks = [c for a in find_answers(text, _MARKERS) if (c := self._committed(a.text)) is not None]
        # an option alone on its line is a committed answer too: with another answer it is a hedge
        picks += [m.upper() for m in _bare_lines(self.options.letters).findall(text)]
        if picks:
            distinct = sorted(
                {p for p in picks if not p.startswith(HEDGE)}
                | {x for p in picks if p.startswith(HEDGE) for x in p[len(HEDGE) :].split(",")}
            )
            return picks[-1] if len(distinct) == 1 else HEDGE + ",".join(distinct)
        return self._named(text)

    def check(self, job: Job) -> Verdict:
        ref = self.letter(str(job.reference or ""))
        if ref is None:
            return Verdict(
                float("nan"), BAD_REFERENCE, f"reference is not one of {self.options.letters}: {job.reference!r}"
            )
        if job.prediction.startswith(HEDGE):
            return Verdict(0.0, OK, f"hedge: several options ({job.prediction[len(HEDGE) :]})")
        return Verdict(1.0 if job.prediction == ref else 0.0, OK)
