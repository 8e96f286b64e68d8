"""TRL adapter: the call convention, whole-group checks, and a real GRPOTrainer run."""

import asyncio
import pickle

import pytest

from rewardkit import load_spec
from rewardkit.integrations.trl import reward_funcs

SPEC = {"verifier": {"name": "exact", "extract": ["hash"]}, "base": {"wrong": -0.5, "no_answer": -1.0},
        "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}], "length_unit": "tokens"}


def call(**over):
    kw = dict(prompts=["2+3", "2+3", "1+1", "1+1"],
              completions=[[{"role": "assistant", "content": "#### 5"}], [{"role": "assistant", "content": "4 4 4 #### 4"}],
                           [{"role": "assistant", "content": "#### 2"}], [{"role": "assistant", "content": "no idea"}]],
              completion_ids=[[5, 0], [4, 4, 4], [2, 0], [9]], answer=["5", "5", "2", "2"], trainer_state=None)
    kw.update(over)
    return kw


def test_combined_and_per_component_sum_exactly():
    (combined,) = reward_funcs(SPEC)
    parts = reward_funcs(SPEC, per_component=True)
    assert combined.__name__ == "rewardkit" and [p.__name__ for p in parts] == ["rewardkit_base", "rewardkit_repetition"]
    total = combined(**call())
    summed = [sum(v) for v in zip(*(p(**call()) for p in parts))]
    assert total == pytest.approx(summed)
    # hand-computed: correct 1; wrong -0.5 + repetition -0.5*(1 - 2/5) = -0.8 (words 4 4 4 #### 4); correct 1; no answer -1
    assert total == pytest.approx([1.0, -0.8, 1.0, -1.0])


def test_standard_format_and_columns_as_references():
    (fn,) = reward_funcs(SPEC, answer_column="solution")
    kw = call(completions=["#### 5", "#### 4", "#### 2", "#### 3"], solution=["5", "5", "2", "2"])
    del kw["answer"]
    assert fn(**kw) == [1.0, -0.5, 1.0, -0.5]


def test_batch_scored_once_so_state_updates_once(tmp_path):
    pipe = load_spec({**SPEC, "state": str(tmp_path / "s.json")})
    parts = reward_funcs(pipe, per_component=True)

    class State:
        global_step = 7

    for p in parts:
        p(**call(trainer_state=State()))
    assert pipe.state.step == 8  # one scored batch at step 7, not one per function


def test_truncation_from_eos_and_num_tokens():
    pipe = load_spec({"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "tokens"})
    (fn,) = reward_funcs(pipe, eos_token_id=0)
    scorer = fn.scorer
    records = scorer.records(*[call()[k] for k in ("prompts", "completions", "completion_ids")], step=3, columns={"answer": ["5", "5", "2", "2"], "difficulty": [1, 1, 2, 2]})
    assert [r["truncated"] for r in records] == [False, True, False, True]
    assert [r["num_tokens"] for r in records] == [2, 3, 2, 1]
    assert records[0]["step"] == 3 and records[0]["meta"] == {"difficulty": 1, "token_ids": [5, 0]}
    assert records[0]["prompt_id"] == records[1]["prompt_id"] != records[2]["prompt_id"]


def test_partial_groups_are_refused():
    (fn,) = reward_funcs(SPEC, num_generations=2)
    with pytest.raises(ValueError, match="needs whole groups"):
        fn(**call(prompts=["2+3", "1+1", "1+1", "1+1"]))
    assert len(fn(**call())) == 4


def test_unknown_correctness_is_none():
    (fn,) = reward_funcs(SPEC)
    assert fn(**call(answer=[None, "5", "2", "2"]))[0] is None


def test_log_metric_gets_component_means():
    (fn,) = reward_funcs(SPEC)
    logged = {}
    fn(**call(log_metric=lambda k, v: logged.__setitem__(k, v)))
    assert logged["rewardkit/correctness"] == pytest.approx(2 / 4)  # the no-answer rollout counts as 0
    assert logged["rewardkit/repetition"] == pytest.approx(-0.3 / 4)


def test_picklable_and_async():
    fns = reward_funcs(SPEC, per_component=True)
    clones = pickle.loads(pickle.dumps(fns))
    assert clones[0](**call()) == fns[0](**call())
    (afn,) = reward_funcs(SPEC, asynchronous=True)
    assert asyncio.iscoroutinefunction(afn.__call__)
    assert asyncio.run(afn(**call())) == pytest.approx([1.0, -0.8, 1.0, -1.0])


@pytest.mark.slow
def test_grpo_trainer_logs_rewardkit_rewards(tmp_path):
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardkit.lab.model import ModelConfig, build_model, build_tokenizer

    torch.set_num_threads(2)
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str((a + b) % 10)} for a in range(4) for b in range(2)])
    spec = {"verifier": {"name": "exact", "extract": ["hash", "whole"]}, "base": {"wrong": -0.5}, "length_unit": "tokens",
            "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5, "unit": "tokens"}]}
    funcs = reward_funcs(spec, per_component=True, eos_token_id=tok.eos_token_id, num_generations=4)
    seen = []

    class Capture:
        """Wraps the combined reward to record exactly what TRL passed and got."""

        __name__ = "capture"

        def __call__(self, completions, completion_ids, answer, prompts, **kw):
            seen.append((list(prompts), list(completions), [list(c) for c in completion_ids], list(answer)))
            return [0.0] * len(completions)

    logs = []

    class Logs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                seen_logs.append(dict(logs))

    seen_logs = logs
    args = trl.GRPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, num_generations=4, max_completion_length=8,
                          learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True,
                          beta=0.0, reward_weights=[1.0] * len(funcs) + [0.0], seed=0)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[*funcs, Capture()], args=args, train_dataset=data, processing_class=tok, callbacks=[Logs()])
    trainer.train()
    assert len(seen) == 2 and len(logs) == 2
    for (prompts, completions, ids, answers), log in zip(seen, logs):
        records = [{"prompt_id": p, "completion": c, "answer": a, "num_tokens": len(i), "meta": {"token_ids": i}} for p, c, a, i in zip(prompts, completions, answers, ids)]
        ours = load_spec(spec).score(records)
        assert log["reward"] == pytest.approx(float(ours.total.mean()), abs=1e-5)
        assert log["rewards/rewardkit_base/mean"] == pytest.approx(float(ours.contributions["base"].mean()), abs=1e-5)
        assert log["rewards/rewardkit_repetition/mean"] == pytest.approx(float(ours.contributions["repetition"].mean()), abs=1e-5)
        assert ours.contributions["repetition"].min() < 0  # the check compares something non-trivial
