"""``reinforce_baseline``: group-mean baseline, then whitening over the batch (REINFORCE++-baseline).

>>> import numpy as np
>>> reward, group = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1])
>>> reinforce_baseline_advantage(reward, group, 2).round(4)
array([ 1.2247, -1.2247,  0.    ,  0.    ])
>>> reinforce_baseline_advantage(reward, group, 2, length=np.array([3.0, 1.0, 2.0, 2.0])).round(4)
array([ 1.0607, -1.7678, -0.3536, -0.3536])
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import AdvantageContext, AdvantageEstimator
from .stats import SINGLETON_HELP, Singleton, check_inputs, check_lengths, group_baseline


def reinforce_baseline_advantage(
    reward: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    length: np.ndarray | None = None,
    eps: float = 1e-8,
    singleton: Singleton = "reward",
    correct_boost: float = 0.0,
    boost_threshold: float = 1.0,
) -> np.ndarray:
    """``A = whiten(r − mean_g)``: centre on the group mean, then subtract the batch mean and
    divide by ``sqrt(batch var + eps)``.

    REINFORCE++-baseline ("REINFORCE++: An Efficient RLHF Algorithm with Robustness to Both
    Prompt and Reward Models", Hu et al., 2025, arXiv:2501.03262), the advantage DLER ("DLER:
    Doing Length pEnalty Right", NVIDIA, 2025) trains with. As verl's
    ``compute_reinforce_plus_plus_baseline_outcome_advantage`` (``masked_whiten`` over all valid
    tokens), the batch mean and the Bessel-corrected variance are weighted by ``length`` (each
    rollout's advantage is repeated on each of its tokens); ``length=None`` weights every rollout
    once. A rollout with weight 0 gets 0 (verl's row has no valid token). ``eps`` is added to the
    variance (verl 1e-8). Where the total weight W ≤ 1 the Bessel factor W/(W − 1) is undefined
    (verl raises) and the plain variance is used.

    ``correct_boost`` is then added to the advantage of every rollout whose reward is
    ``>= boost_threshold − 1e-5`` (DLER's ``boost_high_score_advantages``, checked against
    NVlabs/DLER@ea7d4f7 ``verl-dler/verl/workers/actor/dp_actor.py``: the raw score is the
    summed token-level score, i.e. the reward before the KL term; its training script sets 0.1).
    The boost is added to every row, weight-0 ones included (DLER adds it to every token of the row).
    """
    reward, group = check_inputs("reinforce_baseline", reward, group, n_groups)
    weight = np.ones_like(reward) if length is None else check_lengths("reinforce_baseline", length)
    if weight.shape != reward.shape:
        raise ValueError(f"reinforce_baseline: length has shape {weight.shape} but reward has shape {reward.shape}")
    total = float(weight.sum())
    advantage = np.zeros_like(reward)
    if total > 0.0:
        centred = reward - group_baseline(reward, group, n_groups, singleton)
        mean = float(weight @ centred) / total
        deviation = centred - mean
        variance = float(weight @ (deviation * deviation)) / total
        if total > 1.0:
            variance *= total / (total - 1.0)
        advantage = np.where(weight > 0, deviation / np.sqrt(variance + eps), 0.0)
    if correct_boost:
        advantage = advantage + np.where(reward >= boost_threshold - 1e-5, correct_boost, 0.0)
    return advantage


class ReinforceBaselineOptions(Options):
    token_weighted: bool = Field(
        default=True,
        description="weight the whitening statistics by each rollout's length (verl: over all valid tokens)",
    )
    eps: float = Field(default=1e-8, gt=0.0, description="added to the batch variance (verl 1e-8)")
    singleton: Singleton = Field(default="reward", description=SINGLETON_HELP + " (before whitening)")
    correct_boost: float = Field(
        default=0.0,
        description="added to the advantage of every rollout whose reward >= boost_threshold (DLER's scripts: 0.1; "
        "0 = plain REINFORCE++-baseline, also DLER's recipe-config default)",
    )
    boost_threshold: float = Field(
        default=1.0, description="reward at or above which (within 1e-5) a rollout is boosted (DLER: 1.0)"
    )


@register(
    "advantage",
    "reinforce_baseline",
    "REINFORCE++-baseline / DLER: r - group mean, whitened over the batch's tokens.",
    "REINFORCE++ (Hu et al., 2025); DLER (NVIDIA, 2025)",
)
class ReinforceBaseline(AdvantageEstimator):
    group_aware = True
    Options = ReinforceBaselineOptions

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        o = self.options
        length = ctx.length if o.token_weighted else None
        return reinforce_baseline_advantage(
            ctx.reward, ctx.group, ctx.n_groups, length, o.eps, o.singleton, o.correct_boost, o.boost_threshold
        )
