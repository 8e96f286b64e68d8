"""The advantage-estimator interface: group baselines over a scored batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..batch import group_reduce
from ..registry import Component


@dataclass
class AdvantageContext:
    reward: np.ndarray  # final scalar reward per rollout
    group: np.ndarray  # group index per rollout
    n_groups: int
    length: np.ndarray  # completion length (tokens when known) — token weighting, CANON
    correct: np.ndarray  # 1.0 / 0.0 / NaN
    turn_rewards: list[np.ndarray] | None = None  # per assistant turn (turn-level estimators; None: one turn each)
    turn_advantages: list[list[float]] | None = field(default=None)  # written by turn-level estimators

    def group_stat(self, values: np.ndarray, how: str) -> np.ndarray:
        """Per-group reduction broadcast back to rows."""
        return group_reduce(values, self.group, self.n_groups, how)[self.group]


class AdvantageEstimator(Component):
    """Base class: :meth:`compute` returns one scalar advantage per rollout (no NaN)."""

    kind = "advantage"

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        raise NotImplementedError


def known_advantages(estimator: AdvantageEstimator, ctx: AdvantageContext, known: np.ndarray) -> np.ndarray:
    """Advantages computed over the ``known`` rows only (their groups' statistics exclude the rest);
    unknown rows get advantage 0, i.e. no gradient from a reward nobody measured."""
    if known.all():
        return estimator.compute(ctx)
    out = np.zeros(len(ctx.reward))
    rows = np.flatnonzero(known)
    turns = None if ctx.turn_rewards is None else [ctx.turn_rewards[i] for i in rows]
    sub = AdvantageContext(
        ctx.reward[known], ctx.group[known], ctx.n_groups, ctx.length[known], ctx.correct[known], turns
    )
    if known.any():
        out[known] = estimator.compute(sub)
    if sub.turn_advantages is not None or (turns is not None and not known.any()):
        full = [[0.0] * len(r) for r in ctx.turn_rewards]  # type: ignore[union-attr]
        for i, adv in zip(rows, sub.turn_advantages or []):
            full[i] = adv
        ctx.turn_advantages = full
    return out
