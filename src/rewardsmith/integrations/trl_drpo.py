"""DRPO in TRL: :class:`DRPOTrainer`, a ``GRPOTrainer`` whose loss is DRPO's (:mod:`rewardsmith.objectives.drpo`).

Generation, reward functions, logging and the reference-model KL (``beta``) are TRL's; the loss replaces
GRPO's clipped advantage objective with DRPO's group objective on the policy's token log-probs. A
rollout is correct where its reward is exactly 1 and wrong where exactly 0: the reward is TRL's
weighted sum of the reward functions, or one function's raw value with ``correctness_func=<its name>``
(e.g. a 0/1 correctness function given weight 0 next to a shaped reward)::

    from rewardsmith.integrations.trl import reward_funcs
    from rewardsmith.integrations.trl_drpo import DRPOTrainer
    from rewardsmith.objectives.drpo import DRPOConfig

    trainer = DRPOTrainer(model=model, reward_funcs=reward_funcs({"verifier": "math"}), args=grpo_config,
                          train_dataset=data, processing_class=tok, drpo=DRPOConfig(lam=0.1, tau=10.0))
    trainer.train()

DRPO's objective is over whole groups, so each loss call must hold whole groups: one process, and
``steps_per_generation=1`` (TRL's default when ``gradient_accumulation_steps=1``); other settings are
refused at construction. ``L_max`` defaults to ``max_completion_length``.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

from rewardsmith.objectives.drpo import DRPOConfig, drpo_loss, labels_from_rewards


class DRPOTrainer(GRPOTrainer):
    """TRL ``GRPOTrainer`` optimising DRPO (Li et al. 2025, Eq. 9 with the authors' KL constraint)."""

    def __init__(self, *args: Any, drpo: DRPOConfig | None = None, correctness_func: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        config = drpo or DRPOConfig()
        if config.max_length is None:
            config = DRPOConfig(**{**config.__dict__, "max_length": self.max_completion_length})
        self.drpo = config
        if correctness_func is not None and correctness_func not in self.reward_func_names:
            raise ValueError(
                f"correctness_func {correctness_func!r} is not one of the reward functions {self.reward_func_names}"
            )
        self.correctness_index = None if correctness_func is None else self.reward_func_names.index(correctness_func)
        if self.accelerator.num_processes > 1:
            raise ValueError("DRPOTrainer runs on one process: DRPO's groups would be split across processes")
        if self.args.steps_per_generation != 1:
            raise ValueError(
                "DRPOTrainer needs steps_per_generation=1 so that each loss call sees whole groups "
                f"(got {self.args.steps_per_generation})"
            )
        self._drpo_rewards: torch.Tensor | None = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._drpo_rewards = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        per_func = self._drpo_rewards
        if self.correctness_index is None:
            rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
        else:
            rewards = per_func[:, self.correctness_index]
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        # TRL lays out each prompt's generations contiguously (it views rewards as (-1, num_generations)).
        output["drpo_groups"] = torch.arange(len(rewards), device=rewards.device) // num_generations
        output["drpo_labels"] = labels_from_rewards(rewards)
        return output

    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        per_token_logps, entropies = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True
        )[:2]
        old = inputs.get("old_per_token_logps")
        old = per_token_logps.detach() if old is None else old
        loss, stats = drpo_loss(per_token_logps, old, mask, inputs["drpo_groups"], inputs["drpo_labels"], self.drpo)
        mode = "train" if self.model.training else "eval"
        if self.beta != 0.0:
            ref = inputs["ref_per_token_logps"]
            per_token_kl = torch.exp(ref - per_token_logps) - (ref - per_token_logps) - 1
            ref_kl = (per_token_kl * mask).sum() / mask.sum().clamp(min=1.0)
            loss = loss + self.beta * ref_kl
            self._metrics[mode]["kl"].append(float(ref_kl.detach()))
        masked = mask.to(entropies.dtype)
        self._metrics[mode]["entropy"].append(float((entropies.detach() * masked).sum() / masked.sum().clamp(min=1.0)))
        for key in ("kl", "valid_groups", "objective"):
            self._metrics[mode][f"drpo/{key}"].append(stats[key])
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        return loss / normalizer
