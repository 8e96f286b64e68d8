"""DRPO, Decoupled Reward Policy Optimization (Li et al. 2025, arXiv:2510.04474): the loss, in plain torch.

Per rollout i the score is the token-mean log-probability ``s_i = mean_t log π_θ(o_i,t)``. In each group
(one prompt's rollouts) the correct set P (reward 1) and the wrong set N (reward 0) are decoupled:

    J_g = Σ_{i∈P} w_i·s_i − τ·log mean_{j∈N} exp(s_j/τ),   w = softmax_P((1 − L_i/L_max)/λ)

so a correct rollout is always pushed up (its weight ``w_i`` > 0, larger when shorter) and length never
turns a correct answer into a negative example, unlike a GRPO advantage with a length penalty. Groups
without a correct or without a wrong rollout contribute 0 but stay in the denominator (the number of
groups). The trust region is the authors' KL constraint: ``max(β·(KL − δ), 0).detach()·KL`` with KL the
token mean of ``log π_old − log π_θ`` (``kl_type="kl"``, the authors' run scripts) or of verl's
low-variance estimator (``"low_var_kl"``). Loss = −mean_g J_g + constraint. Defaults λ = 0.1, τ = 10,
δ = 1e-4, β = 1e3 (the authors' scripts). Rewards other than exactly 1 or 0 belong to neither set, as in
the authors' code (``reward == 1`` / ``reward == 0``).

Cross-checked against the authors' ``compute_policy_loss_drpo`` (Optimization-AI/DRPO,
``verl/verl/trainer/ppo/core_algos.py``) in ``tests/test_objectives_drpo.py``: same weights, same
length ratio (``L_max`` = the padded response width unless given), same gradient. One deliberate
difference: the authors write the negative term as ``S/S.detach()`` (S the masked sum of
``exp(s_j/τ − max)``), whose *value* is 1 and whose gradient is that of ``log mean exp``; here the value
is the true log-mean-exp, so the logged loss is the objective's value, with the identical gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CORRECT, WRONG, NEITHER = 1, 0, -1


@dataclass(frozen=True)
class DRPOConfig:
    """DRPO's hyperparameters (defaults: the authors' run scripts)."""

    lam: float = 0.1  # λ, temperature of the length weights over the correct set
    tau: float = 10.0  # τ, temperature of the log-mean-exp over the wrong set
    delta: float = 1e-4  # δ, KL budget of the trust region
    beta: float = 1e3  # β, penalty on KL beyond δ
    kl_type: str = "kl"  # "kl" (the authors' scripts) or "low_var_kl"
    max_length: int | None = None  # L_max; None: the padded response width (the authors' choice)

    def __post_init__(self) -> None:
        if not (self.lam > 0 and self.tau > 0):
            raise ValueError(f"DRPO needs lam > 0 and tau > 0, got lam={self.lam}, tau={self.tau}")
        if self.delta < 0 or self.beta < 0:
            raise ValueError(f"DRPO needs delta >= 0 and beta >= 0, got delta={self.delta}, beta={self.beta}")
        if self.kl_type not in ("kl", "low_var_kl"):
            raise ValueError(f"kl_type must be 'kl' or 'low_var_kl', got {self.kl_type!r}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")


def labels_from_rewards(rewards: torch.Tensor) -> torch.Tensor:
    """CORRECT where the reward is exactly 1, WRONG where exactly 0, NEITHER otherwise (the authors' sets)."""
    labels = torch.full(rewards.shape, NEITHER, dtype=torch.long, device=rewards.device)
    labels[rewards == 1] = CORRECT
    labels[rewards == 0] = WRONG
    return labels


def sequence_scores(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s_i: the token-mean log-probability of each rollout (0 for an empty response)."""
    mask = mask.to(log_probs.dtype)
    return (log_probs * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def length_weights(lengths: torch.Tensor, max_length: float, lam: float) -> torch.Tensor:
    """w = softmax((1 − L/L_max)/λ) over one group's correct rollouts (DRPO's positive weights)."""
    return torch.softmax((1.0 - lengths / max_length) / lam, dim=0)


def log_mean_exp(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """log mean_j exp(s_j/τ) over one group's wrong rollouts, computed stably."""
    return torch.logsumexp(scores / tau, dim=0) - math.log(scores.numel())


def group_objectives(
    scores: torch.Tensor,
    lengths: torch.Tensor,
    groups: torch.Tensor,
    labels: torch.Tensor,
    config: DRPOConfig,
    max_length: float,
) -> tuple[torch.Tensor, int, int]:
    """(Σ_g J_g, number of groups, number of groups with both a correct and a wrong rollout)."""
    total = scores.sum() * 0.0  # keeps the graph (and device/dtype) when no group counts
    unique = torch.unique(groups)
    valid = 0
    for g in unique:
        in_group = groups == g
        pos, neg = in_group & (labels == CORRECT), in_group & (labels == WRONG)
        if not (pos.any() and neg.any()):
            continue
        valid += 1
        weights = length_weights(lengths[pos].to(scores.dtype), max_length, config.lam)
        total = total + (weights * scores[pos]).sum() - config.tau * log_mean_exp(scores[neg], config.tau)
    return total, int(unique.numel()), valid


def trust_region_kl(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, mask: torch.Tensor, kl_type: str
) -> torch.Tensor:
    """Token-mean KL(π_old ‖ π_θ) estimate over all response tokens of the batch."""
    log_ratio = log_probs - old_log_probs
    per_token = -log_ratio if kl_type == "kl" else torch.exp(log_ratio) - 1.0 - log_ratio
    mask = mask.to(log_probs.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def drpo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    mask: torch.Tensor,
    groups: torch.Tensor,
    labels: torch.Tensor,
    config: DRPOConfig | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DRPO's loss on a batch of whole groups; returns (loss, stats).

    ``log_probs``/``old_log_probs``/``mask``: (B, T) token log-probs under the current and the sampling
    policy and the response mask; ``groups``: (B,) group ids (one per prompt); ``labels``: (B,)
    CORRECT/WRONG/NEITHER (see :func:`labels_from_rewards`). Stats: ``kl``, ``groups``,
    ``valid_groups``, ``objective`` (mean_g J_g) and ``kl_over_budget`` (1.0 when KL > δ).
    """
    config = config or DRPOConfig()
    if log_probs.dim() != 2 or log_probs.shape != old_log_probs.shape or log_probs.shape != mask.shape:
        raise ValueError(
            f"log_probs, old_log_probs and mask must share one (B, T) shape, got "
            f"{tuple(log_probs.shape)}, {tuple(old_log_probs.shape)}, {tuple(mask.shape)}"
        )
    if groups.shape != log_probs.shape[:1] or labels.shape != log_probs.shape[:1]:
        raise ValueError(
            f"groups and labels must have shape ({log_probs.shape[0]},), "
            f"got {tuple(groups.shape)}, {tuple(labels.shape)}"
        )
    max_length = float(config.max_length or log_probs.shape[-1])
    lengths = mask.to(log_probs.dtype).sum(-1)
    if (lengths > max_length).any():
        raise ValueError(f"a response is longer ({int(lengths.max())}) than max_length={max_length:g}")
    scores = sequence_scores(log_probs, mask)
    total, num_groups, valid = group_objectives(scores, lengths, groups, labels, config, max_length)
    objective = total / max(num_groups, 1)
    kl = trust_region_kl(log_probs, old_log_probs, mask, config.kl_type)
    constraint = torch.clamp(config.beta * (kl - config.delta), min=0.0).detach() * kl
    loss = -objective + constraint
    stats = {
        "kl": float(kl.detach()),
        "groups": float(num_groups),
        "valid_groups": float(valid),
        "objective": float(objective.detach()),
        "kl_over_budget": float(kl.detach() > config.delta),
    }
    return loss, stats
