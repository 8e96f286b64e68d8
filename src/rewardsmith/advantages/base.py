"""The advantage-estimator interface: group baselines over a scored batch."""

from __future__ import annotations

from dataclasses import dataclass

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
    if known.any():
        sub = AdvantageContext(ctx.reward[known], ctx.group[known], ctx.n_groups, ctx.length[known], ctx.correct[known])
        out[known] = estimator.compute(sub)
    return out
