"""Procedural reasoning tasks for the lab: single-digit chains summed mod 10.

A problem of difficulty ``k`` is ``k`` digits ``d1+d2+...+dk``; the answer is their sum mod 10.
The necessary reasoning is one running-sum step per term after the first (``k − 1`` steps),
written ``a+d=s;`` with ``s = (a + d) mod 10``. A small model cannot add seven digits in one
token, so skipping steps costs accuracy and the number of necessary steps grows with ``k``.

The traces used for SFT mix two habits, each at a configurable rate:

- *overthinking* — redundant work after a step: re-checks that undo it (``chk6-8=8ok;``:
  6 − 8 ≡ 8, the previous sum) and restatements of the running sum (``so6;``);
- *guessing* — the answer with no steps at all (``<think></think>####6``): as reliable as a
  step for two-term chains, about a one-in-ten shot for long ones.

So a length reward has two ways to shorten answers: drop the redundant work (free) or guess
(free on the easiest problems, ruinous on hard ones — a length collapse). A complete
completion reads::

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TraceStyle:
    """Rates of the habits in SFT traces (see the module docstring)."""

    check_rate: float = 0.5  # P(re-check) after each single step
    restate_rate: float = 0.25  # P(restatement) after each single step
    verbosity_spread: float = 1.0  # per-trace verbosity v ~ U(1 − s, 1 + s) scaling both rates
    guess_rate: float = 0.05  # P(the whole trace is a bare answer)

    def __post_init__(self) -> None:
        for name in ("check_rate", "restate_rate", "verbosity_spread", "guess_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def overthinking_trace(digits: Sequence[int], rng: random.Random, style: TraceStyle) -> str:
    """A trace of ``digits`` in ``style``.

    With probability ``guess_rate`` the bare answer. Otherwise the running-sum steps, each
    followed by a re-check with probability ``check_rate·v`` and then a restatement with
    probability ``restate_rate·v`` (clipped to 1), where
    the trace's verbosity v ~ U(1 − spread, 1 + spread). The spread keeps the mean rates but
    makes fully concise traces common enough to be in the policy's repertoire — without it a
    clean seven-term trace is a ~0.3% event and the SFT policy fails at it."""
    answer = str(sum(digits) % 10)
    if style.guess_rate and rng.random() < style.guess_rate:
        return wrap([], answer)
    v = 1.0 + style.verbosity_spread * (2.0 * rng.random() - 1.0) if style.verbosity_spread else 1.0
    p_check, p_restate = min(1.0, style.check_rate * v), min(1.0, style.restate_rate * v)
    sums = running_sums(digits)
    steps: list[str] = []
    for i in range(1, len(digits)):
        steps.append(f"{sums[i - 1]}+{digits[i]}={sums[i]};")
        if rng.random() < p_check:
            steps.append(check_step(sums[i - 1], digits[i], sums[i]))
        if rng.random() < p_restate:
            steps.append(restate_step(sums[i]))
    return wrap(steps, answer)


def generate_problems(n: int, seed: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS) -> list[Problem]:
    """``n`` problems with difficulty cycling evenly through ``min_terms..max_terms``."""
    if not 2 <= min_terms <= max_terms:
        raise ValueError(f"need 2 <= min_terms <= max_terms, got {min_terms}, {max_terms}")
    rng = random.Random(seed)
    span = max_terms - min_terms + 1
    return [make_problem([rng.randrange(10) for _ in range(min_terms + i % span)]) for i in range(n)]


def train_test_split(
    n_train: int, n_test: int, seed: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS
) -> tuple[list[Problem], list[Problem]]:
    """Train and held-out problems drawn with different seeds (short chains can repeat: there
    are only 100 two-term problems)."""
    train = generate_problems(n_train, seed=2 * seed, min_terms=min_terms, max_terms=max_terms)
    test = generate_problems(n_test, seed=2 * seed + 1, min_terms=min_terms, max_terms=max_terms)
    return train, test


_STEP = re.compile(r"^\d\+\d=\d$")
_CHECK = re.compile(r"^chk\d-\d=\dok$")
_RESTATE = re.compile(r"^so\d$")


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
    counts = {"necessary": 0, "redundant": 0, "other": 0}
    for part in body.split(";"):
        part = part.strip()
        if not part:
            continue
        if _STEP.match(part):
            counts["necessary"] += 1
        elif _CHECK.match(part) or _RESTATE.match(part):
            counts["redundant"] += 1
        else:
            counts["other"] += 1
    return StepCounts(**counts)
