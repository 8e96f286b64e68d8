"""DRPO in verl: a policy loss (``actor_rollout_ref.actor.policy_loss.loss_mode=drpo``) and its label estimator
(``algorithm.adv_estimator=drpo_labels``).

verl hands a policy loss only ``(old_log_prob, log_prob, advantages, response_mask, ...)``, while DRPO
needs each rollout's group and whether it is correct. The ``drpo`` advantage estimator therefore writes,
in place of an advantage, a label code per rollout over all its response positions:
``3·(group ordinal + 1) + {0: neither, 1: wrong, 2: correct}`` (the group from verl's ``uid``; correct
where the summed token-level reward is exactly 1, wrong where exactly 0, as in the authors' code). The
``drpo`` policy loss decodes it and computes :func:`rewardsmith.objectives.drpo.drpo_loss`. Both are
registered by importing :mod:`rewardsmith.integrations.verl_plugin` (``VERL_USE_EXTERNAL_MODULES``).

DRPO needs whole groups in one loss call: a group split across micro-batches is scored per part (the
authors' code has the same limit; they gather across data-parallel ranks, which this loss does not).
Keep each mini-batch's groups together (``ppo_micro_batch_size_per_gpu`` a multiple of ``rollout.n``,
``use_dynamic_bsz=False``, one data-parallel rank) for the exact objective. Other hyperparameters:
:func:`register_drpo` with a name of your own, in a module listed in ``VERL_USE_EXTERNAL_MODULES``.
"""

from __future__ import annotations

from typing import Any

import torch

from rewardsmith.objectives.drpo import CORRECT, NEITHER, WRONG, DRPOConfig, drpo_loss, labels_from_rewards

_STATE = {NEITHER: 0, WRONG: 1, CORRECT: 2}
_LABEL = {v: k for k, v in _STATE.items()}


def encode_labels(token_level_rewards: torch.Tensor, index: Any) -> torch.Tensor:
    """(B,) label codes ``3·(group + 1) + state`` from verl's token-level rewards and ``uid`` array."""
    keys = list(index) if index is not None else list(range(token_level_rewards.shape[0]))
    ids: dict[Any, int] = {}
    group = torch.tensor([ids.setdefault(k, len(ids)) for k in keys], dtype=torch.long)
    if len(ids) >= 2**24 // 3:
        raise ValueError("too many groups to encode exactly in float32 advantages")
    labels = labels_from_rewards(token_level_rewards.sum(dim=-1).detach().cpu())
    state = torch.tensor([_STATE[int(v)] for v in labels], dtype=torch.long)
    return 3 * (group + 1) + state


def decode_labels(advantages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows that carry a code, their groups, their labels) from the codes of :class:`DRPOLabelEstimator`.

    A row's code is its largest entry: verl may pad a row (an empty response) with zeros; such a row has
    no response token, so leaving it out changes neither the objective nor the KL."""
    codes = torch.round(advantages.detach().max(dim=1).values).long()
    rows = codes >= 3
    if not rows.any():
        raise ValueError(
            "policy_loss.loss_mode=drpo needs algorithm.adv_estimator=drpo_labels (advantages are not DRPO label codes)"
        )
    codes = codes[rows]
    labels = torch.tensor([_LABEL[int(s)] for s in codes % 3], dtype=torch.long, device=advantages.device)
    return rows, codes // 3, labels


class DRPOLabelEstimator:
    """verl advantage estimator that carries DRPO's (group, correct/wrong) to the policy loss."""

    __name__ = "drpo_labels"

    def __call__(
        self,
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: Any = None,
        config: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        codes = encode_labels(token_level_rewards, index).to(device=token_level_rewards.device, dtype=torch.float32)
        out = codes.unsqueeze(-1).expand(response_mask.shape).contiguous()
        return out, out


class DRPOPolicyLoss:
    """verl policy loss with verl's ``PolicyLossFn`` signature computing DRPO's loss."""

    def __init__(self, config: DRPOConfig):
        self.config = config
        self.__name__ = "compute_policy_loss_drpo"

    def __call__(
        self,
        old_log_prob: torch.Tensor,
        log_prob: torch.Tensor,
        advantages: torch.Tensor,
        response_mask: torch.Tensor,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        if rollout_is_weights is not None:
            raise ValueError("DRPO does not use rollout importance weights; disable rollout correction")
        rows, groups, labels = decode_labels(advantages)
        loss, stats = drpo_loss(log_prob[rows], old_log_prob[rows], response_mask[rows], groups, labels, self.config)
        metrics = {
            "actor/ppo_kl": stats["kl"],
            "actor/pg_clipfrac": stats["kl_over_budget"],
            "actor/drpo_valid_groups": stats["valid_groups"],
            "actor/drpo_objective": stats["objective"],
        }
        return loss, metrics


def register_drpo(name: str = "drpo", config: DRPOConfig | None = None) -> str:
    """Register DRPO's policy loss as ``name`` (retrievable by verl's ``get_policy_loss_fn``) and the
    ``drpo_labels`` label estimator (``get_adv_estimator_fn("drpo_labels")``); returns ``name``. Idempotent."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est, register_policy_loss

    if "drpo_labels" not in ADV_ESTIMATOR_REGISTRY:
        register_adv_est("drpo_labels")(DRPOLabelEstimator())
    register_policy_loss(name)(DRPOPolicyLoss(config or DRPOConfig()))
    return name
