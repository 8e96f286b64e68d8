"""Vectorised per-group statistics shared by the advantage estimators.

Every function takes ``values`` per rollout, ``group`` (the group index of each rollout, in any
order — groups need not be contiguous) and ``n_groups``, and returns one value per group.

    >>> import numpy as np
    >>> group = np.array([0, 1, 0, 1, 2])
    >>> group_std(np.array([1.0, 0.0, 3.0, 0.0, 5.0]), group, 3, ddof=1)
    array([1.41421356, 0.        , 0.        ])
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..batch import group_reduce

StdKind = Literal["unbiased", "biased"]
Singleton = Literal["reward", "zero"]
SINGLETON_HELP = (
    "advantage of a rollout alone in its group: 'reward' = the reward itself (verl: mean 0, std 1), 'zero' = no signal"
)


def ddof_of(std: StdKind) -> int:
    """Delta degrees of freedom: 1 for the Bessel-corrected (``unbiased``) std, 0 for ``biased``."""
    return 1 if std == "unbiased" else 0


def group_size(group: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of rollouts in each group (float64)."""
    return np.bincount(group, minlength=n_groups).astype(np.float64)


def group_mean(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of each group; 0 for an empty group (never NaN)."""
    return np.nan_to_num(group_reduce(values, group, n_groups, "mean"), nan=0.0)


def group_std(values: np.ndarray, group: np.ndarray, n_groups: int, ddof: int) -> np.ndarray:
    """Std of each group with ``ddof`` (two-pass, numerically stable); 0 where size <= ddof."""
    deviation = values - group_mean(values, group, n_groups)[group]
    squares = np.bincount(group, weights=deviation * deviation, minlength=n_groups)
    dof = group_size(group, n_groups) - ddof
    return np.sqrt(np.divide(squares, dof, out=np.zeros(n_groups), where=dof > 0))


def group_baseline(reward: np.ndarray, group: np.ndarray, n_groups: int, singleton: Singleton) -> np.ndarray:
    """Group-mean baseline per rollout; a rollout alone in its group gets baseline 0 when
    ``singleton='reward'`` (verl's convention: its advantage is its reward) or its own reward
    when ``singleton='zero'`` (no learning signal)."""
    mean = group_mean(reward, group, n_groups)[group]
    if singleton == "reward":
        return np.where(group_size(group, n_groups)[group] == 1, 0.0, mean)
    return mean


def check_inputs(estimator: str, reward: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(reward as float64, group as int64)``; raises ``ValueError`` on NaN/inf rewards or
    group ids out of range."""
    reward = np.asarray(reward, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    if reward.shape != np.shape(group):
        raise ValueError(f"{estimator}: reward has shape {reward.shape} but group has shape {np.shape(group)}")
    if not np.isfinite(reward).all():
        bad = int(np.flatnonzero(~np.isfinite(reward))[0])
        raise ValueError(f"{estimator}: reward of rollout {bad} is {reward[bad]}; advantages need finite rewards")
    if len(group) and (group.min() < 0 or group.max() >= n_groups):
        raise ValueError(f"{estimator}: group ids must lie in [0, {n_groups}), got {group.min()}..{group.max()}")
    return reward, group


def check_lengths(estimator: str, length: np.ndarray) -> np.ndarray:
    """Lengths as float64; raises ``ValueError`` unless all are finite and >= 0."""
    length = np.asarray(length, dtype=np.float64)
    bad = ~np.isfinite(length) | (length < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{estimator}: length of rollout {i} is {length[i]}; need finite lengths >= 0")
    return length
