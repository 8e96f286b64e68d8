"""Procedural reasoning tasks for the lab: single-digit chains summed mod 10.

A problem of difficulty ``k`` is ``k`` digits ``d1+d2+...+dk``; the answer is their sum mod 10.
The necessary reasoning is one running-sum step per term after the first (``k − 1`` steps),
written ``a+d=s;`` with ``s = (a + d) mod 10``. A small model cannot add seven digits in one
token, so skipping steps costs accuracy and the number of necessary steps grows with ``k``.

The *overthinking* traces used for SFT add redundant work at configurable rates: re-checks
that undo a step (``chk6-8=8ok;``: 6 − 8 ≡ 8, the previous sum) and restatements of the
running sum (``so6;``). A complete completion reads::

    <think>3+5=8;chk8-5=3ok;8+8=6;so6;</think>####6

and ends with ``####<answer>``, the GSM8K form read by the ``exact`` verifier's ``hash`` rule.

    >>> p = make_problem([3, 5, 8])
    >>> p.prompt, p.answer
    ('3+5+8=', '6')
    >>> necessary_trace(p.digits)
    '<think>3+5=8;8+8=6;</think>####6'
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

THINK_OPEN, THINK_CLOSE, ANSWER_MARK = "<think>", "</think>", "####"
MIN_TERMS, MAX_TERMS = 2, 7


@dataclass(frozen=True)
class Problem:
    digits: tuple[int, ...]

    @property
    def difficulty(self) -> int:
        """The number of terms; the necessary steps are ``difficulty − 1``."""
        return len(self.digits)

    @property
    def prompt(self) -> str:
        return "+".join(map(str, self.digits)) + "="

    @property
    def answer(self) -> str:
        return str(sum(self.digits) % 10)

    @property
    def prompt_id(self) -> str:
        return "".join(map(str, self.digits))


def make_problem(digits: Sequence[int]) -> Problem:
    if len(digits) < 2 or any(not 0 <= d <= 9 for d in digits):
        raise ValueError(f"need at least two single digits, got {list(digits)}")
    return Problem(tuple(int(d) for d in digits))


def running_sums(digits: Sequence[int]) -> list[int]:
    """The partial sums mod 10 after each term: ``[d1, d1+d2, ...]``."""
    out, s = [], 0
    for d in digits:
        s = (s + d) % 10
        out.append(s)
    return out


def necessary_steps(digits: Sequence[int]) -> list[str]:
    """One ``a+d=s;`` step per term after the first."""
    sums = running_sums(digits)
    return [f"{sums[i - 1]}+{digits[i]}={sums[i]};" for i in range(1, len(digits))]


def check_step(previous: int, digit: int, result: int) -> str:
    """A redundant re-check undoing a step: ``result − digit ≡ previous (mod 10)``."""
    return f"chk{result}-{digit}={previous}ok;"


def restate_step(result: int) -> str:
    return f"so{result};"


def wrap(steps: Iterable[str], answer: str) -> str:
    return f"{THINK_OPEN}{''.join(steps)}{THINK_CLOSE}{ANSWER_MARK}{answer}"


def necessary_trace(digits: Sequence[int]) -> str:
    return wrap(necessary_steps(digits), str(sum(digits) % 10))


def overthinking_trace(digits: Sequence[int], rng: random.Random, check_rate: float, restate_rate: float) -> str:
    """The necessary steps, each followed by a re-check with probability ``check_rate`` and
    then a restatement with probability ``restate_rate``."""
    sums = running_sums(digits)
    steps: list[str] = []
    for i in range(1, len(digits)):
        steps.append(f"{sums[i - 1]}+{digits[i]}={sums[i]};")
        if rng.random() < check_rate:
            steps.append(check_step(sums[i - 1], digits[i], sums[i]))
        if rng.random() < restate_rate:
            steps.append(restate_step(sums[i]))
    return wrap(steps, str(sum(digits) % 10))


def generate_problems(n: int, seed: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS) -> list[Problem]:
    """``n`` problems with difficulty cycling evenly through ``min_terms..max_terms``."""
    if not 2 <= min_terms <= max_terms:
        raise ValueError(f"need 2 <= min_terms <= max_terms, got {min_terms}, {max_terms}")
    rng = random.Random(seed)
    span = max_terms - min_terms + 1
    return [make_problem([rng.randrange(10) for _ in range(min_terms + i % span)]) for i in range(n)]


def train_test_split(n_train: int, n_test: int, seed: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS) -> tuple[list[Problem], list[Problem]]:
    """Train and held-out problems drawn with different seeds (short chains can repeat: there
    are only 100 two-term problems)."""
    train = generate_problems(n_train, seed=2 * seed, min_terms=min_terms, max_terms=max_terms)
    test = generate_problems(n_test, seed=2 * seed + 1, min_terms=min_terms, max_terms=max_terms)
    return train, test


_NECESSARY = re.compile(r"^(\d)\+(\d)=(\d)$")
_CHECK = re.compile(r"^chk(\d)-(\d)=(\d)ok$")
_RESTATE = re.compile(r"^so(\d)$")


@dataclass(frozen=True)
class StepCounts:
    necessary: int  # a+d=s steps
    redundant: int  # re-checks and restatements
    other: int  # anything else between separators

    @property
    def total(self) -> int:
        return self.necessary + self.redundant + self.other


def count_steps(completion: str) -> StepCounts:
    """Classify the ``;``-separated steps inside the thinking block (or the whole completion
    when there is none)."""
    body = completion
    if THINK_OPEN in body:
        body = body.split(THINK_OPEN, 1)[1]
    body = body.split(THINK_CLOSE, 1)[0].split(ANSWER_MARK, 1)[0]
    necessary = redundant = other = 0
    for part in body.split(";"):
        part = part.strip()
        if not part:
            continue
        if _NECESSARY.match(part):
            necessary += 1
        elif _CHECK.match(part) or _RESTATE.match(part):
            redundant += 1
        else:
            other += 1
    return StepCounts(necessary, redundant, other)
