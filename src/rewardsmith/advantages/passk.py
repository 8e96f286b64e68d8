"""``passk``: only each group's best rollout gets an advantage, ``r_max − r_2nd`` (verl ``grpo_passk``).

>>> import numpy as np
>>> reward, group = np.array([0.2, 1.0, 0.5, 1.0, 1.0, 0.0]), np.array([0, 0, 0, 1, 1, 1])
>>> passk_advantage(reward, group, 2, norm_by_std=False)
array([0. , 0.5, 0. , 0. , 0. , 0. ])
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import AdvantageContext, AdvantageEstimator
from .stats import check_inputs, group_size, group_std


def passk_advantage(
    reward: np.ndarray, group: np.ndarray, n_groups: int, norm_by_std: bool = True, eps: float = 1e-6
) -> np.ndarray:
    """Pass@k advantage: the best rollout of a group gets ``r_max − r_2nd`` (divided by the
    group's Bessel-corrected std + ``eps`` when ``norm_by_std``), every other rollout 0.

    arXiv:2503.19595 as implemented by verl's ``compute_grpo_passk_outcome_advantage`` (its
    ``norm_adv_by_std_in_grpo`` is ``norm_by_std``, default True). When the best reward is
    tied, ``r_max − r_2nd = 0`` and every rollout of the group gets 0, whichever row is taken as
    the best. verl raises on a group of one; here such a rollout gets 0 (no runner-up).
    """
    reward, group = check_inputs("passk", reward, group, n_groups)
    advantage = np.zeros_like(reward)
    if not len(reward):
        return advantage
    order = np.lexsort((-reward, group))  # by group, best reward first (stable: ties keep row order)
    sorted_group = group[order]
    first = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    has_runner_up = group_size(group, n_groups)[sorted_group[first]] > 1
    best, runner_up = order[first[has_runner_up]], order[first[has_runner_up] + 1]
    gap = reward[best] - reward[runner_up]
    if norm_by_std:
        gap = gap / (group_std(reward, group, n_groups, ddof=1)[group[best]] + eps)
    advantage[best] = gap
    return advantage


class PasskOptions(Options):
    norm_by_std: bool = Field(default=True, description="divide by the group std + eps (verl norm_adv_by_std_in_grpo)")
    eps: float = Field(default=1e-6, gt=0.0, description="added to the group std (verl 1e-6)")


@register(
    "advantage",
    "passk",
    "Pass@k: the group's best rollout gets r_max - r_2nd, the rest 0 (verl grpo_passk).",
    "arXiv:2503.19595 (via verl grpo_passk)",
)
class Passk(AdvantageEstimator):
    group_aware = True
    Options = PasskOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        return passk_advantage(ctx.reward, ctx.group, ctx.n_groups, self.options.norm_by_std, self.options.eps)
