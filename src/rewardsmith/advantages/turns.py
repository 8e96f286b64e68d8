"""``turn_grpo``: turn-level advantages for multi-turn trajectories (discounted returns over turns,
group-normalised per turn position).

Conventions (docs/multiturn.md compares them):

- **Turn rewards** r_{i,t}: the per-turn rewards of the spec's turn-unit component (``igpo``,
  ``carl``, ``oni``; the rest of the reward on the last turn, as in the ``dense`` output), else
  the sparse outcome: 0 on every assistant turn but the last, which carries the reward. A record
  without ``messages`` is one turn.
- **Returns** G_{i,t} = Σ_{k≥t} γ^{k−t} r_{i,k} (γ = 1 by default, IGPO's choice; γ < 1 makes a
  late reward count less for early turns).
- **Normalisation**: per group *and turn position*: A_{i,t} = (G_{i,t} − mean_j G_{j,t}) / (std_j
  G_{j,t} + ε) over the group's trajectories that reached turn t (GRPO's statistic, verl defaults:
  ε 1e-6, Bessel-corrected std, a position reached by one trajectory gets mean 0 and std 1).
  IGPO instead z-scores all of a group's turn rewards jointly *before* the returns
  (:func:`rewardsmith.shaping.process.igpo_advantages`, the ``igpo`` component's own dense advantages);
  "A Practitioner's Guide to Multi-turn Agentic RL" (Wang et al. 2025) compares dense turn-level
  against sparse trajectory rewards under PPO/GRPO/RLOO [unverified: its exact estimator].

The record's scalar ``advantage`` is its first turn's A_{i,0}; every turn's A_{i,t} goes to the
``dense`` output's ``advantages`` (``unit: turn``) for a trainer that assigns each turn's tokens
its own advantage. With one turn per record this is GRPO exactly.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import AdvantageContext, AdvantageEstimator
from .group import grpo_advantage
from .stats import SINGLETON_HELP, Singleton, StdKind, check_inputs


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = Σ_{k≥t} γ^{k−t} r_k."""
    out = np.zeros(len(rewards))
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def turn_grpo_advantages(
    turn_rewards: list[np.ndarray],
    group: np.ndarray,
    gamma: float = 1.0,
    eps: float = 1e-6,
    std: StdKind = "unbiased",
    singleton: Singleton = "reward",
) -> list[np.ndarray]:
    """A_{i,t}: GRPO over the returns G_{i,t} of each (group, turn position) (module docstring)."""
    returns = [discounted_returns(np.asarray(r, dtype=np.float64), gamma) for r in turn_rewards]
    flat = np.concatenate(returns) if returns else np.zeros(0)
    keys: dict[tuple[int, int], int] = {}
    slots = np.array(
        [keys.setdefault((int(group[i]), t), len(keys)) for i, g in enumerate(returns) for t in range(len(g))],
        dtype=np.int64,
    )
    if not len(flat):
        return [np.zeros(0) for _ in returns]
    adv = grpo_advantage(flat, slots, len(keys), eps=eps, std=std, singleton=singleton)
    bounds = np.cumsum([0] + [len(g) for g in returns])
    return [adv[bounds[i] : bounds[i + 1]] for i in range(len(returns))]


class TurnGrpoOptions(Options):
    gamma: float = Field(default=1.0, ge=0.0, le=1.0, description="turn-level discount γ (IGPO: 1)")
    eps: float = Field(default=1e-6, gt=0.0, description="added to the std (verl: 1e-6; TRL: 1e-4)")
    std: StdKind = "unbiased"
    singleton: Singleton = Field(default="reward", description=SINGLETON_HELP)


@register(
    "advantage",
    "turn_grpo",
    "turn-level GRPO: discounted returns over assistant turns, normalised per group and turn position",
    "IGPO (Wang et al. 2025); A Practitioner's Guide to Multi-turn Agentic RL (2025)",
)
class TurnGrpo(AdvantageEstimator):
    """Per-turn advantages (module docstring); ``compute`` returns each row's first-turn advantage and
    leaves every turn's in ``ctx.turn_advantages``."""

    Options = TurnGrpoOptions
    group_aware: ClassVar[bool] = True
    turn_level: ClassVar[bool] = True  # the pipeline passes per-turn rewards and reads per-turn advantages

    def compute(self, ctx: AdvantageContext) -> np.ndarray:
        o = self.options
        check_inputs(self.name, ctx.reward, ctx.group, ctx.n_groups)
        turns = ctx.turn_rewards if ctx.turn_rewards is not None else [np.array([r]) for r in ctx.reward]
        adv = turn_grpo_advantages(turns, ctx.group, o.gamma, o.eps, o.std, o.singleton)
        ctx.turn_advantages = [a.tolist() for a in adv]
        return np.array([a[0] if len(a) else 0.0 for a in adv])
