"""``budget_curriculum``: a token budget that shrinks over training ("Train Long, Think Short:
Curriculum Learning for Efficient Reasoning", Hammoud et al. 2025) [unverified: third-party
description, schedule constants are parameters].

The budget at step t (``ctx.step``: the records' ``step`` or the pipeline's counter) is

- ``exponential``: B(t) = max(end, start·γ^⌊t/every⌋)
- ``linear``:      B(t) = max(end, start − decrement·⌊t/every⌋)

and drives one of two step rewards, chosen by ``apply``:

- ``truncation`` (default): rollouts longer than B(t), or truncated, score ``value`` (the spec's
  ``base.wrong`` by default) — :func:`rewardsmith.shaping.limits.truncation_reward`; the
  component is the new reward;
- ``laser``: correct rollouts get the LASER step reward with target B(t) (``alpha``, ``mode``) —
  :func:`rewardsmith.shaping.laser.laser_step_reward`; the component is the added term.

The schedule needs no state beyond the step.

    >>> budget_at(0, 1000, 250, 10, "exponential", gamma=0.5), budget_at(25, 1000, 250, 10, "exponential", gamma=0.5)
    (1000.0, 250.0)
    >>> budget_at(25, 1000, 250, 10, "linear", decrement=100)
    800.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..registry import Options, register
from .base import Shaper, ShapingContext
from .laser import LaserMode, laser_step_reward
from .limits import truncation_reward


def budget_at(
    step: int, start: float, end: float, every: int, decay: str, gamma: float = 0.9, decrement: float | None = None
) -> float:
    """The budget B(step) of the schedule (see the module docstring); steps < 0 count as 0."""
    stage = max(step, 0) // every
    if decay == "exponential":
        return float(max(end, start * gamma**stage))
    if decrement is None:
        raise ValueError("a linear budget needs a decrement")
    return float(max(end, start - decrement * stage))


class BudgetCurriculumOptions(Options):
    start: float = Field(..., gt=0, description="budget B0 at step 0")
    end: float = Field(..., gt=0, description="smallest budget B_min")
    every: int = Field(..., ge=1, description="the budget changes every this many steps")
    decay: Literal["exponential", "linear"] = Field(default="exponential", description="shape of the schedule")
    gamma: float = Field(default=0.9, gt=0, le=1, description="exponential: factor per stage [unverified]")
    decrement: float | None = Field(
        default=None, gt=0, description="linear: budget removed per stage (required for linear)"
    )
    apply: Literal["truncation", "laser"] = Field(default="truncation", description="what the budget drives")
    value: float | None = Field(default=None, description="truncation: reward over budget; None: the spec's base.wrong")
    alpha: float = Field(default=0.5, ge=0, description="laser: size of the step reward")
    mode: LaserMode = Field(default="reward", description="laser: reward | penalty | hybrid")

    @model_validator(mode="after")
    def _consistent(self) -> BudgetCurriculumOptions:
        if self.end > self.start:
            raise ValueError(f"end ({self.end}) must not exceed start ({self.start})")
        if self.decay == "linear" and self.decrement is None:
            raise ValueError("decrement: required when decay is 'linear'")
        return self


@register(
    "shaper",
    "budget_curriculum",
    "A token budget decaying over steps (exponential or linear) that drives a truncation or LASER step reward.",
    "Train Long, Think Short (Hammoud et al., 2025) [unverified]",
)
class BudgetCurriculum(Shaper):
    step_scheduled = True
    Options = BudgetCurriculumOptions
    example_options = {"start": 300, "end": 100, "every": 2, "apply": "laser"}

    def budget(self, step: int) -> float:
        o = self.options
        return budget_at(step, o.start, o.end, o.every, o.decay, o.gamma, o.decrement)

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        budget = self.budget(ctx.step)
        if o.apply == "laser":
            term = laser_step_reward(ctx.length, budget, ctx.is_correct & ctx.format_ok, o.alpha, o.mode)
            return ctx.reward + term, term
        value = ctx.base_values.wrong if o.value is None else o.value
        new = truncation_reward(ctx.reward, ctx.length, ctx.truncated, budget, value)
        return new, new.copy()
