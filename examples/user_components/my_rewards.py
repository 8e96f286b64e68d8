"""A user's own reward components, used by spec.yaml (see docs/components.md).

Run from the repository root with this folder on the path — the verification workers import
this module by name, so it must be importable, not defined in a script's ``__main__``::

    PYTHONPATH=examples/user_components rewardsmith score examples/math_rollouts.jsonl \\
        --spec examples/user_components/spec.yaml -o scored.jsonl
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from rewardsmith.registry import Options
from rewardsmith.shaping.base import Shaper, ShapingContext


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` in ``text``, nested braces included."""
    found, start = [], text.find("\\boxed{")
    while start != -1:
        depth, i = 1, start + len("\\boxed{")
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append(text[start + len("\\boxed{") : i - 1])
        start = text.find("\\boxed{", i)
    return found


def one_boxed_answer(completions: list[str], solution: list[str | None], **columns: object) -> list[float | None]:
    """TRL-style reward: 1.0 when the completion has exactly one ``\\boxed{}`` whose content equals the
    solution (spaces ignored), 0.0 otherwise — several boxes (hedging between answers) score 0 —
    and None (unknown) without a solution."""
    rewards: list[float | None] = []
    for text, sol in zip(completions, solution):
        if sol is None:
            rewards.append(None)
            continue
        boxes = boxed_contents(text)
        rewards.append(float(len(boxes) == 1 and "".join(boxes[0].split()) == "".join(sol.split())))
    return rewards


class LengthCapOptions(Options):
    limit: float = Field(gt=0, description="longest completion (in the spec's length_unit) that goes unpenalised")
    penalty: float = Field(default=0.2, ge=0, description="subtracted from every rollout longer than limit")


class LengthCap(Shaper):
    """Subtract a fixed penalty from rollouts longer than a limit."""

    name = "length_cap"  # the key of its value in the output's components
    Options = LengthCapOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        return np.where(ctx.length > self.options.limit, -self.options.penalty, 0.0)
