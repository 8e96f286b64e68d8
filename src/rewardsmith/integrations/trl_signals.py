"""TRL: hand the policy's own per-token log-probs and entropies to rewardsmith's components.

A reward function in TRL sees text and token ids, never the policy's log-probs.
:class:`PolicySignalsGRPOTrainer` (a ``trl.GRPOTrainer``) computes them for each batch of
completions before the reward functions run — one no-grad forward pass of the policy over the
prompt ids (tokenized as the trainer tokenized them for generation) and the completion ids — and
passes them as the ``token_logprobs`` and ``entropies`` columns, which the adapter
(:mod:`rewardsmith.integrations.trl`) puts in each record's ``meta``. Components that need those
signals (``pear``, ``implicit_prm`` with the policy as π) then read the policy's values, as the
papers do, without loading a second model.

    from rewardsmith.integrations.trl import reward_funcs
    from rewardsmith.integrations.trl_signals import PolicySignalsGRPOTrainer
    trainer = PolicySignalsGRPOTrainer(model=..., args=GRPOConfig(num_generations=8, ...), train_dataset=ds,
                                       reward_funcs=reward_funcs({"verifier": "math", "shaping": [{"name": "pear",
                                       "think_end_id": tok.convert_tokens_to_ids("</think>")}]}, processing_class=tok))

The values are those of the current policy weights (TRL's ``old_per_token_logps`` when
generation is on-policy), computed in float32 from the model as the trainer holds it.
"""

from __future__ import annotations

from typing import Any

from trl import GRPOTrainer

from ..lm_signals import token_signals

SIGNAL_COLUMNS = ("token_logprobs", "entropies")


class PolicySignalsGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose reward functions also receive the policy's ``token_logprobs`` and ``entropies``
    (one list per completion, one value per completion token)."""

    def _calculate_rewards(
        self,
        inputs: list[dict[str, Any]],
        prompts: list[Any],
        completions: list[Any],
        completion_ids_list: list[list[int]],
    ) -> Any:
        prompt_ids = self._tokenize_prompts(prompts)[0]
        model = self.accelerator.unwrap_model(self.model)
        pad_id = self.processing_class.pad_token_id or 0
        pairs = [(list(p), list(c)) for p, c in zip(prompt_ids, completion_ids_list)]
        signals = token_signals(model, pairs, pad_id, batch_size=len(pairs) or 1, entropies=True)
        inputs = [
            {**x, "token_logprobs": lp.tolist(), "entropies": ent.tolist()} for x, (lp, ent) in zip(inputs, signals)
        ]
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
