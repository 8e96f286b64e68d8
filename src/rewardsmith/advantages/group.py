"""Group-baseline advantages: ``grpo``, ``dr_grpo``, ``rloo``, ``batch_std``.

One scalar advantage per rollout, computed per group (the rollouts of one prompt) with
vectorised reductions; rows of a group may be anywhere in the batch.

A group of one rollout has no baseline. verl (``compute_grpo_outcome_advantage``,
``compute_rloo_outcome_advantage``) then uses mean 0 and std 1, so the advantage is the reward
itself; that is the default here (``singleton='reward'``). ``singleton='zero'`` gives such a
rollout advantage 0 instead.

    >>> import numpy as np
    >>> reward, group = np.array([1.0, 0.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1, 1])
    >>> dr_grpo_advantage(reward, group, 2).round(4)
    array([ 0.5   , -0.5   , -0.6667,  0.3333,  0.3333])
    >>> rloo_advantage(reward, group, 2)
    array([ 1. , -1. , -1. ,  0.5,  0.5])
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import AdvantageContext, AdvantageEstimator
from .stats import SINGLETON_HELP, Singleton, StdKind, check_inputs, ddof_of, group_baseline, group_size, group_std


def grpo_advantage(
    reward: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    eps: float = 1e-6,
    std: StdKind = "unbiased",
    singleton: Singleton = "reward",
) -> np.ndarray:
    """GRPO outcome advantage ``A = (r − mean_g) / (std_g + eps)``.

    DeepSeekMath (Shao et al., 2024), §4.1.2 "Outcome supervision RL with GRPO". Defaults follow
    verl's ``compute_grpo_outcome_advantage`` (``eps`` 1e-6, Bessel-corrected std, a group of one
    gets mean 0 and std 1, i.e. ``A = r / (1 + eps)``); TRL uses ``eps`` 1e-4. A group whose
    rewards are all equal gets 0.

        >>> grpo_advantage(np.array([1.0, 0.0, 0.0, 0.0]), np.array([0, 0, 0, 0]), 1).round(4)
        array([ 1.5, -0.5, -0.5, -0.5])
    """
    reward, group = check_inputs("grpo", reward, group, n_groups)
    baseline = group_baseline(reward, group, n_groups, singleton)
    scale = group_std(reward, group, n_groups, ddof_of(std))[group]
    if singleton == "reward":
        scale = np.where(group_size(group, n_groups)[group] == 1, 1.0, scale)
    return (reward - baseline) / (scale + eps)


def dr_grpo_advantage(
    reward: np.ndarray, group: np.ndarray, n_groups: int, singleton: Singleton = "reward"
) -> np.ndarray:
    """Dr. GRPO advantage ``A = r − mean_g`` (no std scaling).

    "Understanding R1-Zero-Like Training: A Critical Perspective" (Liu et al., 2025,
    arXiv:2503.20783), Dr. GRPO;
    verl's ``grpo`` with ``norm_adv_by_std_in_grpo=False``.
    """
    reward, group = check_inputs("dr_grpo", reward, group, n_groups)
    return reward - group_baseline(reward, group, n_groups, singleton)


def rloo_advantage(reward: np.ndarray, group: np.ndarray, n_groups: int, singleton: Singleton = "reward") -> np.ndarray:
    """RLOO advantage ``A = r − (Σ_g r − r) / (n_g − 1)``: the mean of the *other* rollouts.

    "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in
    LLMs" (Ahmadian et al., 2024), leave-one-out baseline of Kool et al. (2019). Equals
    ``n/(n−1)·(r − mean_g)``, as verl's ``compute_rloo_outcome_advantage`` computes it; there a
    group of one keeps its reward (``singleton='reward'``).
    """
    reward, group = check_inputs("rloo", reward, group, n_groups)
    size = group_size(group, n_groups)[group]
    centred = reward - group_baseline(reward, group, n_groups, singleton)
    return np.where(size > 1, centred * size / np.maximum(size - 1, 1), centred)


def batch_std_advantage(
    reward: np.ndarray, group: np.ndarray, n_groups: int, eps: float = 1e-4, std: StdKind = "unbiased"
) -> np.ndarray:
    """Group mean, batch std: ``A = (r − mean_g) / (std_batch(r) + eps)``.

    TRL ``GRPOConfig(scale_rewards="batch")`` (the "group mean, batch std" normalisation of
    "Tricks or Traps? A Deep Dive into RL for LLM Reasoning", Liu et al., 2025, arXiv:2508.08221,
    "Lite PPO"): the std is that
    of the raw rewards over the whole batch, Bessel-corrected, ``eps`` 1e-4; a batch of one row
    has std 0. A group of one has baseline = its own reward, so advantage 0 (as in TRL).

        >>> batch_std_advantage(np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1]), 2).round(3)
        array([ 1., -1.,  0.,  0.])
    """
    reward, group = check_inputs("batch_std", reward, group, n_groups)
    baseline = group_baseline(reward, group, n_groups, singleton="zero")
    ddof = ddof_of(std)
    scale = float(np.std(reward, ddof=ddof)) if len(reward) > ddof else 0.0
    return (reward - baseline) / (scale + eps)


class GrpoOptions(Options):
    eps: float = Field(default=1e-6, gt=0.0, description="added to the group std (verl 1e-6, TRL 1e-4)")
    std: StdKind = Field(default="unbiased", description="group std: 'unbiased' (Bessel, verl/TRL) or 'biased'")
    singleton: Singleton = Field(default="reward", description=SINGLETON_HELP)


class SingletonOptions(Options):
    singleton: Singleton = Field(default="reward", description=SINGLETON_HELP)


class BatchStdOptions(Options):
    eps: float = Field(default=1e-4, gt=0.0, description="added to the batch std (TRL 1e-4)")
    std: StdKind = Field(default="unbiased", description="batch std: 'unbiased' (Bessel, TRL) or 'biased'")


@register("advantage", "grpo", "GRPO: (r - group mean) / (group std + eps).", "DeepSeekMath (Shao et al., 2024)")
class Grpo(AdvantageEstimator):
    group_aware = True
    Options = GrpoOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        o = self.options
        return grpo_advantage(ctx.reward, ctx.group, ctx.n_groups, o.eps, o.std, o.singleton)


@register(
    "advantage",
    "dr_grpo",
    "Dr. GRPO: r - group mean (no std scaling).",
    "Understanding R1-Zero-Like Training (Liu et al., 2025)",
)
class DrGrpo(AdvantageEstimator):
    group_aware = True
    Options = SingletonOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        return dr_grpo_advantage(ctx.reward, ctx.group, ctx.n_groups, self.options.singleton)


@register(
    "advantage", "rloo", "RLOO: r - mean of the other rollouts of the group.", "Back to Basics (Ahmadian et al., 2024)"
)
class Rloo(AdvantageEstimator):
    group_aware = True
    Options = SingletonOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        return rloo_advantage(ctx.reward, ctx.group, ctx.n_groups, self.options.singleton)


@register(
    "advantage",
    "batch_std",
    "Group mean baseline, batch std scaling (TRL scale_rewards='batch').",
    "Tricks or Traps? (Liu et al., 2025)",
)
class BatchStd(AdvantageEstimator):
    group_aware = True
    Options = BatchStdOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        return batch_std_advantage(ctx.reward, ctx.group, ctx.n_groups, self.options.eps, self.options.std)
