"""One user component of each kind, and TRL-style reward functions, written as a user would."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import numpy as np

from rewardsmith.advantages.base import AdvantageContext, AdvantageEstimator
from rewardsmith.registry import Options
from rewardsmith.shaping.base import Shaper, ShapingContext
from rewardsmith.verifiers.base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from rewardsmith.verifiers.exact import ExactVerifier
from rewardsmith.verifiers.format import FormatReward

_INTEGER = re.compile(r"-?\d+")


class LastIntegerOptions(Options):
    offset: int = 0  # the answer is reference + offset (lets a test tell two configurations apart)


class LastInteger(Verifier):
    """The last integer in the completion equals the reference."""

    Options = LastIntegerOptions

    def extract(self, completion: str) -> str | None:
        found = _INTEGER.findall(completion)
        return found[-1] if found else None

    def check(self, job: Job) -> Verdict:
        if job.reference is None or not _INTEGER.fullmatch(job.reference.strip()):
            return Verdict(float("nan"), BAD_REFERENCE, "reference is not an integer")
        return Verdict(float(int(job.prediction) == int(job.reference) + self.options.offset), OK)


class ReversedExact(ExactVerifier):
    """``exact`` against the reversed reference: a subclass that inherits the built-in's name."""

    def check(self, job: Job) -> Verdict:
        return super().check(Job(job.prediction, None if job.reference is None else job.reference[::-1]))


class AnswerLine(FormatReward):
    """A line starting with 'Answer:'."""

    def score(self, completion: str) -> float:
        return float(any(line.startswith("Answer:") for line in completion.splitlines()))


class OverLimitOptions(Options):
    limit: float
    penalty: float = 0.5


class OverLimit(Shaper):
    """Subtract ``penalty`` from rollouts longer than ``limit``."""

    Options = OverLimitOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        return np.where(ctx.length > self.options.limit, -self.options.penalty, 0.0)


class LongerThanGroup(Shaper):
    """Subtract 0.5 from rollouts longer than their group's mean length (a group-aware shaper)."""

    group_aware = True

    def term(self, ctx: ShapingContext) -> np.ndarray:
        return np.where(ctx.length > ctx.group_stat(ctx.length, "mean"), -0.5, 0.0)


class MinusGroupMean(AdvantageEstimator):
    """Reward minus its group's mean (no scaling)."""

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        return ctx.reward - ctx.group_stat(ctx.reward, "mean")


def hash_answer(completions: list[str], solution: list[str | None], **columns: object) -> list[float | None]:
    """TRL-style: 1.0 when the text after the last '####' is the solution; None without a solution.
    With ``$USERPKG_CALLS`` set, appends how many completions each call got to that file."""
    if os.environ.get("USERPKG_CALLS"):
        with Path(os.environ["USERPKG_CALLS"]).open("a") as f:
            f.write(f"{len(completions)}\n")
    return [
        None if sol is None else float(text.rpartition("####")[2].strip() == sol.strip())
        for text, sol in zip(completions, solution)
    ]


def logged_length(completions: list[str], log: list[str], **columns: object) -> list[float]:
    """TRL-style: appends how many completions each call got to the file named by the ``log`` column;
    returns 1.0 for completions of even length, 0.25 for the others."""
    with Path(log[0]).open("a") as f:
        f.write(f"{len(completions)}\n")
    return [1.0 if len(c) % 2 == 0 else 0.25 for c in completions]


def sleep_on_request(completions: list[str], **columns: object) -> list[float]:
    """TRL-style: hangs when a completion says SLEEP, else 1.0."""
    if any("SLEEP" in c for c in completions):
        time.sleep(60)
    return [1.0] * len(completions)


def exit_on_request(completions: list[str], **columns: object) -> list[float]:
    """TRL-style: kills its process when a completion says EXIT, else 1.0."""
    if any("EXIT" in c for c in completions):
        os._exit(3)
    return [1.0] * len(completions)


def echo_columns(completions: list, **columns: object) -> list[float]:
    """Records what it was called with in the file named by the ``log`` column (as repr), 1.0 each."""
    with Path(columns["log"][0]).open("a") as f:  # type: ignore[index]
        f.write(repr({"completions": completions, **columns}) + "\n")
    return [1.0] * len(completions)


def wrong_count(completions: list[str], **columns: object) -> list[float]:
    return [1.0]


def not_numbers(completions: list[str], **columns: object) -> list[object]:
    return ["yes", float("inf"), True, float("nan")][: len(completions)]


class LockedReward:
    """A callable object holding a lock: it cannot be pickled, so workers cannot get it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, completions: list[str], **columns: object) -> list[float]:
        return [1.0] * len(completions)


locked_reward = LockedReward()


class NotAComponent:
    """A class that is not a rewardsmith component."""


NOT_CALLABLE = 42
