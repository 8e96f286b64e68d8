"""Dynamic sampling (DAPO, DLER): find the groups whose rewards are all equal.

Such a group has zero advantage under every group baseline, so it only dilutes the batch;
DAPO ("DAPO: An Open-Source LLM Reinforcement Learning System at Scale", Yu et al., 2025, §3.2
"Dynamic Sampling") drops it and samples more prompts to refill the batch, and DLER trains with
the same filter. As verl's group filter, a group of one rollout is kept (and counted apart, as
``single_rollout_groups``). Rewards are compared by range (``max − min <= atol``, ``atol`` 1e-9)
rather than through a std, which rounding can make non-zero for equal values. This is the one
definition: ``rewardsmith score``'s summary, the TRL logs and ``rewardsmith audit`` all use it.

    >>> import numpy as np
    >>> reward, group = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5]), np.array([0, 0, 1, 1, 2, 2, 3])
    >>> zero_variance_groups(reward, group, 4)
    array([ True, False,  True, False])
    >>> keep_mask(reward, group, 4)
    array([False, False,  True,  True, False, False,  True])
    >>> report = dynamic_sampling_report(reward, group, 4)
    >>> report["zero_variance_groups"], report["single_rollout_groups"], report["dropped_rollouts"], report["collapsed_to"]
    (2, 1, 4, {0.0: 1, 1.0: 1})
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .stats import group_size

ZERO_VARIANCE_ATOL = 1e-9  # rewards within this range count as equal


def _known(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    if values.shape != group.shape:
        raise ValueError(f"values have shape {values.shape} but group has shape {group.shape}")
    finite = np.isfinite(values)
    return values[finite], group[finite]


def zero_variance_groups(
    values: np.ndarray, group: np.ndarray, n_groups: int, atol: float = ZERO_VARIANCE_ATOL
) -> np.ndarray:
    """One bool per group: True where the group has at least two rollouts with a known (finite)
    value and all of them are equal within ``atol``. NaN values (e.g. unknown correctness) are
    left out; a group with fewer than two known values is never zero-variance."""
    values, group = _known(values, group)
    high = np.full(n_groups, -np.inf)
    low = np.full(n_groups, np.inf)
    np.maximum.at(high, group, values)
    np.minimum.at(low, group, values)
    return (group_size(group, n_groups) >= 2) & (high - low <= atol)


def keep_mask(values: np.ndarray, group: np.ndarray, n_groups: int, atol: float = ZERO_VARIANCE_ATOL) -> np.ndarray:
    """One bool per rollout: False for the rollouts of a zero-variance group (to be dropped)."""
    return ~zero_variance_groups(values, group, n_groups, atol)[np.asarray(group, dtype=np.int64)]


def dynamic_sampling_report(
    values: np.ndarray, group: np.ndarray, n_groups: int, atol: float = ZERO_VARIANCE_ATOL
) -> dict[str, Any]:
    """Counts for a summary: groups with at least one rollout, zero-variance groups and their
    share, groups with a single known value (never zero-variance), rollouts dropped, and
    ``collapsed_to`` {shared value: number of groups} (e.g. how many groups were all correct vs all wrong)."""
    group = np.asarray(group, dtype=np.int64)
    flat = zero_variance_groups(values, group, n_groups, atol)
    present = group_size(group, n_groups) > 0
    n_present, n_flat = int(present.sum()), int(flat.sum())
    known_values, known_group = _known(values, group)
    first_value = np.full(n_groups, np.nan)
    first_value[known_group[::-1]] = known_values[::-1]  # the first known value of each group
    shared, counts = np.unique(first_value[flat], return_counts=True)
    return {
        "groups": n_present,
        "zero_variance_groups": n_flat,
        "zero_variance_share": n_flat / n_present if n_present else 0.0,
        "single_rollout_groups": int((group_size(known_group, n_groups) == 1).sum()),
        "dropped_rollouts": int((~keep_mask(values, group, n_groups, atol)).sum()),
        "collapsed_to": {float(v): int(c) for v, c in zip(shared, counts)},
    }
