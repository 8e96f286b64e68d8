"""Procedural reasoning tasks for the lab: single-digit chains summed mod 10, in two families.

A problem of difficulty ``k`` is ``k`` digits ``d1+d2+...+dk``; the answer is their sum mod 10.
The necessary reasoning is one running-sum step per term after the first (``k − 1`` steps),
written ``a+d=s;`` with ``s = (a + d) mod 10``. A small model cannot add seven digits in one
token, so skipping steps costs accuracy and the number of necessary steps grows with ``k``.

**carry** (the default): the policy makes a *systematic* slip — from the third step on, when
``a + d ≥ 13`` it writes ``s + 1`` (a carry counted twice) — and only a check step
``chka+d=s;`` that recomputes the step repairs it: the next step continues from the check's
value, and a slip left unchecked propagates to a wrong answer. Beside the repairing checks sit
pure redundancy: re-checks of safe steps (same value) and restatements ``so6;``. The SFT traces
check a risky step far more often than a safe one (neither ever 0 nor 1, and a per-trace
verbosity scales both), so a reward can learn to keep the checks that pay and drop the rest —
or, uniformly penalising length, drop both and lose the hard problems. Difficulty = risk: a
chain of k ≤ 3 terms cannot slip, one of 7 terms has four steps that can. A k = 6 trace::

    <think>3+5=8;8+8=6;so6;6+9=6;chk6+9=5;5+4=9;chk5+4=9;9+7=7;chk9+7=6;</think>####6

(step 3 ``6+9`` slipped to 6 and its check repaired it to 5; ``chk5+4=9`` re-checked a safe
step; ``9+7=7`` slipped and was repaired to 6).

**chain** (the earlier task): the same steps with no slip; the SFT traces add re-checks that
undo a step (``chk6-8=8ok;``: 6 − 8 ≡ 8, the previous sum) and restatements, and since no step
is ever wrong every check is redundant. A complete completion reads::

    <think>3+5=8;chk8-5=3ok;8+8=6;so6;</think>####6

**rounding**: the carry task's traces with a slip whose trigger is in the step itself — from the
third step on, adding 8 or 9 (as "ten, minus the complement", taking back one too few) the policy
writes one too many. Its risk is visible in the step's own digits, so a small policy can learn to
check exactly the steps that slip, which it does not learn for the carry slip, whose trigger
``a + d ≥ 13`` needs the sum itself (docs/lab.md, "Cutting 30% within 2 points"). A k = 5 trace::

    <think>3+5=8;so8;8+8=6;chk8+8=6;6+9=6;chk6+9=5;5+4=9;</think>####9

(``6+9`` slipped and was repaired; ``8+8`` at step 2 cannot slip, so its check is redundant).

All three tasks' traces may be bare guesses (``<think></think>####6``: as reliable as a step for
two-term chains, about a one-in-ten shot for long ones), and end with ``####<answer>``, the
GSM8K form read by the ``exact`` verifier's ``hash`` rule.

    >>> p = make_problem([3, 5, 8], task="chain")
    >>> p.prompt, p.answer
    ('3+5+8=', '6')
    >>> necessary_trace(p.digits)
    '<think>3+5=8;8+8=6;</think>####6'
    >>> carry_necessary_trace([3, 5, 8, 9, 4], "carry")
    '<think>3+5=8;8+8=6;6+9=6;chk6+9=5;5+4=9;</think>####9'
    >>> carry_necessary_trace([3, 5, 8, 9, 8], "rounding")
    '<think>3+5=8;8+8=6;6+9=6;chk6+9=5;5+8=4;chk5+8=3;</think>####3'
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import count_tokens

THINK_OPEN, THINK_CLOSE, ANSWER_MARK = "<think>", "</think>", "####"
MIN_TERMS, MAX_TERMS = 2, 7
TASKS = ("carry", "rounding", "chain")
SLIP_TASKS = ("carry", "rounding")  # the tasks whose policy slips systematically (traces in a CarryStyle)
DEFAULT_TASK = "carry"


@dataclass(frozen=True)
class Problem:
    digits: tuple[int, ...]
    task: str = DEFAULT_TASK

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

    @property
    def necessary_trace(self) -> str:
        """The shortest trace that reaches the answer the way the policy computes: the steps, and
        in a slip task a repairing check after each slipped step."""
        if self.task in SLIP_TASKS:
            return carry_necessary_trace(self.digits, self.task)
        return necessary_trace(self.digits)


def make_problem(digits: Sequence[int], task: str = DEFAULT_TASK) -> Problem:
    if len(digits) < 2 or any(not 0 <= d <= 9 for d in digits):
        raise ValueError(f"need at least two single digits, got {list(digits)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    return Problem(tuple(int(d) for d in digits), task)


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


def generate_problems(
    n: int, seed: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS, task: str = DEFAULT_TASK
) -> list[Problem]:
    """``n`` problems with difficulty cycling evenly through ``min_terms..max_terms``."""
    if not 2 <= min_terms <= max_terms:
        raise ValueError(f"need 2 <= min_terms <= max_terms, got {min_terms}, {max_terms}")
    rng = random.Random(seed)
    span = max_terms - min_terms + 1
    return [make_problem([rng.randrange(10) for _ in range(min_terms + i % span)], task) for i in range(n)]


def train_test_split(
    n_train: int,
    n_test: int,
    seed: int,
    min_terms: int = MIN_TERMS,
    max_terms: int = MAX_TERMS,
    task: str = DEFAULT_TASK,
) -> tuple[list[Problem], list[Problem]]:
    """Train and held-out problems drawn with different seeds (short chains can repeat: there
    are only 100 two-term problems)."""
    train = generate_problems(n_train, 2 * seed, min_terms, max_terms, task)
    test = generate_problems(n_test, 2 * seed + 1, min_terms, max_terms, task)
    return train, test


# --- the slip tasks: carry and rounding --------------------------------------------------------

SLIP_FROM_STEP, SLIP_THRESHOLD = 3, 13
ROUNDING_DIGITS = (8, 9)


def slips(step: int, a: int, d: int, task: str) -> bool:
    """Whether the policy writes step ``step`` (1-based) of ``a+d`` off by one: from the third step
    on, in the carry task when ``a + d ≥ 13`` (21 of the 100 digit pairs), in the rounding task
    when ``d`` is 8 or 9 (20 of them)."""
    if task not in SLIP_TASKS:
        raise ValueError(f"task {task!r} has no slips; slip tasks: {list(SLIP_TASKS)}")
    if step < SLIP_FROM_STEP:
        return False
    return d in ROUNDING_DIGITS if task == "rounding" else a + d >= SLIP_THRESHOLD


def written_sum(step: int, a: int, d: int, task: str) -> int:
    """The result the policy writes for ``a+d`` at step ``step``: ``(a + d) mod 10``, plus one when
    it slips."""
    s = (a + d) % 10
    return (s + 1) % 10 if slips(step, a, d, task) else s


def carry_step(a: int, d: int, written: int) -> str:
    return f"{a}+{d}={written};"


def carry_check(a: int, d: int) -> str:
    """A check recomputing ``a+d`` correctly; the next step continues from its value."""
    return f"chk{a}+{d}={(a + d) % 10};"


def carry_necessary_trace(digits: Sequence[int], task: str) -> str:
    """The steps, each slipped one followed by its repairing check: the shortest trace the policy
    of slip task ``task`` can write that reaches the right answer."""
    value, parts = digits[0], []
    for i, d in enumerate(digits[1:], start=1):
        parts.append(carry_step(value, d, written_sum(i, value, d, task)))
        if slips(i, value, d, task):
            parts.append(carry_check(value, d))
        value = (value + d) % 10
    return wrap(parts, str(value))


@dataclass(frozen=True)
class CarryStyle:
    """Rates of the habits in the slip tasks' (carry, rounding) SFT traces (see the module docstring)."""

    risky_check_rate: float = 0.9  # P(check) after a step that slipped (0.832 on average after clipping r·v to 1)
    safe_check_rate: float = 0.55  # P(check) after a step written right (a redundant re-check)
    restate_rate: float = 0.6  # P(restatement) after each step
    verbosity_spread: float = 0.5  # per-trace verbosity v ~ U(1 − s, 1 + s) scaling all three rates
    guess_rate: float = 0.02  # P(the whole trace is a bare answer)
    # False: a slipped step is checked at risky_check_rate whatever the trace's verbosity (checking risky steps is
    # a skill, the rest a style); True: verbosity scales it too, so checking is one habit (the study's base policies)
    verbosity_scales_risky: bool = True

    def __post_init__(self) -> None:
        for name in ("risky_check_rate", "safe_check_rate", "restate_rate", "verbosity_spread", "guess_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


# How the SFT traces check slipped steps (``rewardsmith lab --risky-checks``): habit = the trace's verbosity
# scales it like the rest, so checking is one habit; skill = at 0.9 whatever the verbosity; always = every slip.
RISKY_CHECKS: dict[str, dict[str, float | bool]] = {
    "habit": {"risky_check_rate": 0.9, "verbosity_scales_risky": True},
    "skill": {"risky_check_rate": 0.9, "verbosity_scales_risky": False},
    "always": {"risky_check_rate": 1.0, "verbosity_scales_risky": False},
}


def carry_trace(digits: Sequence[int], rng: random.Random, style: CarryStyle, task: str) -> str:
    """An SFT trace of ``digits`` for slip task ``task`` in ``style``: with probability ``guess_rate`` the bare answer;
    otherwise each step as the policy writes it (slips included), followed by a check with
    probability ``risky_check_rate·v`` after a slip or ``safe_check_rate·v`` after a right step,
    then a restatement with probability ``restate_rate·v`` (all clipped to 1; v ~ U(1 − spread,
    1 + spread) per trace). The trace continues from the check's value when there is one, from
    the written value otherwise, so an unchecked slip carries on to a wrong answer."""
    if style.guess_rate and rng.random() < style.guess_rate:
        return wrap([], str(sum(digits) % 10))
    v = 1.0 + style.verbosity_spread * (2.0 * rng.random() - 1.0)
    p_risky = min(1.0, style.risky_check_rate * (v if style.verbosity_scales_risky else 1.0))
    p_safe = min(1.0, style.safe_check_rate * v)
    p_restate = min(1.0, style.restate_rate * v)
    value, parts = digits[0], []
    for i, d in enumerate(digits[1:], start=1):
        written = written_sum(i, value, d, task)
        parts.append(carry_step(value, d, written))
        if rng.random() < (p_risky if slips(i, value, d, task) else p_safe):
            parts.append(carry_check(value, d))
            written = (value + d) % 10
        if rng.random() < p_restate:
            parts.append(restate_step(written))
        value = written
    return wrap(parts, str(value))


def sft_trace(problem: Problem, rng: random.Random, style: TraceStyle | CarryStyle) -> str:
    """One SFT trace of ``problem`` in its task's style."""
    if problem.task in SLIP_TASKS:
        if not isinstance(style, CarryStyle):
            raise TypeError(f"the {problem.task} task needs a CarryStyle, got {type(style).__name__}")
        return carry_trace(problem.digits, rng, style, problem.task)
    if not isinstance(style, TraceStyle):
        raise TypeError(f"the chain task needs a TraceStyle, got {type(style).__name__}")
    return overthinking_trace(problem.digits, rng, style)


# --- reading a completion ----------------------------------------------------------------------

_STEP = re.compile(r"^(\d)\+(\d)=(\d)$")
_CHAIN_CHECK = re.compile(r"^chk\d-\d=\dok$")
_CARRY_CHECK = re.compile(r"^chk(\d)\+(\d)=(\d)$")
_RESTATE = re.compile(r"^so(\d)$")


@dataclass(frozen=True)
class TraceAnnotation:
    """What a completion's reasoning is made of, in steps (``;``-separated parts of the thinking
    block) and in tokens (EOS not included; the framing ``<think></think>####a`` counts as
    necessary).

    - necessary: the running-sum steps ``a+d=s`` (right or slipped);
    - repair: checks that correct a slipped step (slip tasks);
    - redundant: re-checks that change nothing and restatements;
    - other: anything else (malformed parts, checks of no step);
    - slipped_at: the positions (1-based, among the steps) of the steps whose written value is wrong;
    - repaired_at: those of them a repairing check follows (the rest are ``unrepaired_slips``);
    - recheck_steps: the redundant steps that are checks (the rest are restatements)."""

    necessary_steps: int = 0
    repair_steps: int = 0
    redundant_steps: int = 0
    other_steps: int = 0
    necessary_tokens: int = 0
    repair_tokens: int = 0
    redundant_tokens: int = 0
    other_tokens: int = 0
    slipped_at: tuple[int, ...] = ()
    repaired_at: tuple[int, ...] = ()
    recheck_steps: int = 0

    @property
    def slipped_steps(self) -> int:
        """Steps written with a wrong value (each repaired by a check or left unrepaired)."""
        return len(self.slipped_at)

    @property
    def unrepaired_slips(self) -> int:
        """Steps written with a wrong value and no repairing check after them."""
        return len(self.slipped_at) - len(self.repaired_at)

    @property
    def steps(self) -> int:
        return self.necessary_steps + self.repair_steps + self.redundant_steps + self.other_steps

    @property
    def tokens(self) -> int:
        return self.necessary_tokens + self.repair_tokens + self.redundant_tokens + self.other_tokens


def _thinking(completion: str) -> tuple[str, str]:
    """(the thinking block — the whole text before ``####`` when there is no block —, the rest)."""
    head, body = "", completion
    if THINK_OPEN in body:
        head, body = body.split(THINK_OPEN, 1)
        head += THINK_OPEN
    cut = min(i for i in (body.find(THINK_CLOSE), body.find(ANSWER_MARK), len(body)) if i >= 0)
    return body[:cut], head + body[cut:]


def annotate(completion: str, task: str = DEFAULT_TASK) -> TraceAnnotation:
    """Classify every part of ``completion``'s reasoning as necessary, repair, redundant or other
    (see :class:`TraceAnnotation`), counting steps and tokens. In a slip task a check is a repair
    when it follows a step whose written value it corrects, redundant when it confirms the value
    the trace holds."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    body, framing = _thinking(completion)
    counts = dict.fromkeys(("necessary", "repair", "redundant", "other"), 0)
    tokens = {**counts, "necessary": count_tokens(framing)}
    rechecks = position = 0
    slipped_at: list[int] = []
    repaired_at: list[int] = []
    value: int | None = None  # the value the trace carries on from
    last: tuple[int, int] | None = None  # (a, d) of the step just written, until a check follows
    pieces = body.split(";")
    for n, raw in enumerate(pieces):
        part = raw.strip()
        if not part:
            tokens["other"] += count_tokens(raw) + (n < len(pieces) - 1)
            continue
        kind = "other"
        if step := _STEP.match(part):
            a, d, w = map(int, step.groups())
            kind, value, last, position = "necessary", w, (a, d), position + 1
            if w != (a + d) % 10:
                slipped_at.append(position)
        elif task == "chain" and (_CHAIN_CHECK.match(part) or _RESTATE.match(part)):
            kind = "redundant"
            rechecks += part.startswith("chk")
        elif task in SLIP_TASKS and (check := _CARRY_CHECK.match(part)):
            a, d, s = map(int, check.groups())
            if last == (a, d) and s == (a + d) % 10:
                kind = "redundant" if s == value else "repair"
                if kind == "repair":
                    repaired_at.append(position)
                rechecks += kind == "redundant"
                value, last = s, None
        elif task in SLIP_TASKS and (restate := _RESTATE.match(part)):
            kind = "redundant" if value is not None and int(restate.group(1)) == value else "other"
        counts[kind] += 1
        tokens[kind] += count_tokens(raw) + (n < len(pieces) - 1)
    return TraceAnnotation(
        **{f"{k}_steps": v for k, v in counts.items()},
        **{f"{k}_tokens": v for k, v in tokens.items()},
        slipped_at=tuple(slipped_at),
        repaired_at=tuple(repaired_at),
        recheck_steps=rechecks,
    )
