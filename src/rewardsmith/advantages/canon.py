"""``canon``: conditional advantage that compares the short and the long half of each group (CANON).

>>> import numpy as np
>>> reward = np.array([1.0, 0.0, 1.0, 0.0])
>>> length = np.array([10.0, 40.0, 30.0, 20.0])  # short half: rows 0 and 3; long half: rows 2 and 1
>>> canon_advantage(reward, np.zeros(4, dtype=int), 1, length, norm_len=1.0)
array([ 0.5, -0.5,  0.5, -0.5])
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import AdvantageContext, AdvantageEstimator
from .stats import check_inputs, check_lengths, group_size


def long_half(length: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """True for the rollouts in the long half of their group: after a stable sort by length, the
    first ⌊n/2⌋ rollouts are the short half and the rest the long half (ties keep row order)."""
    size = group_size(group, n_groups).astype(np.int64)
    order = np.lexsort((length, group))  # by group, then length; lexsort is stable
    start = np.cumsum(size) - size
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = np.arange(len(group)) - start[group[order]]
    return rank >= size[group] // 2


def canon_advantage(
    reward: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    length: np.ndarray,
    alpha: float = 1.0,
    beta: float = 0.0,
    lam: float = 1.0,
    norm_len: float = 8192.0,
) -> np.ndarray:
    """CANON, length variant ("Conditional Advantage Estimation for Reinforcement Learning in
    Large Reasoning Models", 2025; formulas as in the official code, biuboomc/CANON
    ``compute_dr_length_on_mean_group_outcome_advantage``).

    With μ_s, μ_l the mean reward of the group's short and long half (:func:`long_half`):
    long half  ``A = [λ(α·r − μ_s + β) + (1 − λ)(r − μ_l)] / L_norm``;
    short half ``A = [λ(r − α·μ_l − β) + (1 − λ)(r − μ_s)] / L_norm``.
    A group of one has μ_s = μ_l = 0 (its rollout counts as long, as ⌊1/2⌋ = 0).
    """
    reward, group = check_inputs("canon", reward, group, n_groups)
    length = check_lengths("canon", length)
    if length.shape != reward.shape:
        raise ValueError(f"canon: length has shape {length.shape} but reward has shape {reward.shape}")
    is_long = long_half(length, group, n_groups)
    size = group_size(group, n_groups)
    long_count = np.bincount(group, weights=is_long.astype(np.float64), minlength=n_groups)
    long_sum = np.bincount(group, weights=np.where(is_long, reward, 0.0), minlength=n_groups)
    short_sum = np.bincount(group, weights=reward, minlength=n_groups) - long_sum
    several = size > 1
    mean_long = np.divide(long_sum, long_count, out=np.zeros(n_groups), where=several & (long_count > 0))
    mean_short = np.divide(short_sum, size - long_count, out=np.zeros(n_groups), where=several & (size > long_count))
    mu_s, mu_l = mean_short[group], mean_long[group]
    on_long = lam * (alpha * reward - mu_s + beta) + (1.0 - lam) * (reward - mu_l)
    on_short = lam * (reward - alpha * mu_l - beta) + (1.0 - lam) * (reward - mu_s)
    return np.where(is_long, on_long, on_short) / norm_len


class CanonOptions(Options):
    alpha: float = Field(
        default=1.0, description="weight of the rollout's own reward (long half) / of the long half's mean (short half)"
    )
    beta: float = Field(default=0.0, description="bonus for the long half, penalty for the short half (0 = symmetric)")
    lam: float = Field(
        default=1.0, ge=0.0, le=1.0, description="mix of the cross-half baseline (1) and the within-half baseline (0)"
    )
    norm_len: float = Field(default=8192.0, gt=0.0, description="constant the advantage is divided by (L_norm)")


@register(
    "advantage",
    "canon",
    "CANON: each half of the group (by length) baselined on the other half's mean reward.",
    "CANON (Conditional Advantage Estimation, 2025)",
)
class Canon(AdvantageEstimator):
    group_aware = True
    Options = CanonOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        o = self.options
        return canon_advantage(ctx.reward, ctx.group, ctx.n_groups, ctx.length, o.alpha, o.beta, o.lam, o.norm_len)
