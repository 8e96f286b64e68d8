"""TRL: PolicySignalsGRPOTrainer hands the policy's own per-token log-probs and entropies to the reward functions,
and rewardsmith components read them (values checked against a manual forward pass of the policy)."""

import numpy as np
import pytest

trl = pytest.importorskip("trl")
import torch  # noqa: E402


@pytest.mark.slow  # trains one GRPO step
def test_policy_log_probs_reach_the_components_and_equal_a_manual_forward_pass(tmp_path):
    from datasets import Dataset

    from rewardsmith.integrations.trl import reward_funcs
    from rewardsmith.integrations.trl_signals import PolicySignalsGRPOTrainer
    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer

    torch.set_num_threads(2)
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    think_end = tok.convert_tokens_to_ids("</think>")
    (pear,) = reward_funcs(
        {
            "shaping": [{"name": "pear", "think_coef": 1.0, "answer_coef": 0.5, "think_end_id": think_end}],
            "length_unit": "tokens",
        },
        processing_class=tok,
    )
    seen = []

    def manual(prompt, completion_ids):
        """The policy's forward pass done by hand: log-softmax of the logits before each completion token."""
        prompt_ids = tok(prompt)["input_ids"]
        ids = torch.tensor([prompt_ids + list(completion_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(trainer.model(input_ids=ids).logits[0].float(), -1)
        rows = range(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(completion_ids))
        lp = [logp[r, t].item() for r, t in zip(rows, completion_ids)]
        ent = [-(logp[r].exp() * logp[r]).sum().item() for r in rows]
        return lp, ent

    class Capture:
        __name__ = "capture"

        def __call__(self, prompts, completions, completion_ids, token_logprobs, entropies, **kw):
            values = pear(
                prompts=prompts,
                completions=completions,
                completion_ids=completion_ids,
                token_logprobs=token_logprobs,
                entropies=entropies,
                **kw,
            )
            seen.append(
                [
                    (p, list(c), lp, ent, v, manual(p, c))
                    for p, c, lp, ent, v in zip(prompts, completion_ids, token_logprobs, entropies, values)
                ]
            )
            return [0.0] * len(completions)

    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(2) for b in range(2)])
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        beta=0.0,
        seed=0,
        logging_steps=1,
    )
    trainer = PolicySignalsGRPOTrainer(
        model=model, reward_funcs=[Capture()], args=args, train_dataset=data, processing_class=tok
    )
    trainer.train()
    rows = [r for batch in seen for r in batch]
    assert rows and any(len(c) > 1 for _, c, *_ in rows)
    for _, ids, lp, ent, value, (lp_manual, ent_manual) in rows:
        assert (
            len(lp) == len(ids)
            and lp == pytest.approx(lp_manual, abs=1e-5)
            and ent == pytest.approx(ent_manual, abs=1e-5)
        )
        k = ids.index(think_end) + 1 if think_end in ids else len(ids)
        think, answer = np.array(ent_manual[:k]), np.array(ent_manual[k:])
        want = -(think.mean() if len(think) else 0.0) - 0.5 * (answer.mean() if len(answer) else 0.0)
        assert value == pytest.approx(want, abs=1e-5)  # pear read the policy's entropies from meta
