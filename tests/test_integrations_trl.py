"""TRL adapter: the call convention, whole-group checks, and a real GRPOTrainer run."""

import asyncio
import doctest
import pickle

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.components import entries
from rewardsmith.integrations import grouping
from rewardsmith.integrations import trl as rk_trl
from rewardsmith.integrations.grouping import PartialGroupError
from rewardsmith.integrations.trl import reward_funcs

SPEC = {
    "verifier": {"name": "exact", "extract": ["hash"]},
    "base": {"wrong": -0.5, "no_answer": -1.0},
    "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}],
    "length_unit": "tokens",
}


def call(**over):
    kw = dict(
        prompts=["2+3", "2+3", "1+1", "1+1"],
        completions=[
            [{"role": "assistant", "content": "#### 5"}],
            [{"role": "assistant", "content": "4 4 4 #### 4"}],
            [{"role": "assistant", "content": "#### 2"}],
            [{"role": "assistant", "content": "no idea"}],
        ],
        completion_ids=[[5, 0], [4, 4, 4], [2, 0], [9]],
        answer=["5", "5", "2", "2"],
        trainer_state=None,
    )
    kw.update(over)
    return kw


def test_combined_and_per_component_sum_exactly():
    (combined,) = reward_funcs(SPEC)
    parts = reward_funcs(SPEC, per_component=True)
    assert combined.__name__ == "rewardsmith" and [p.__name__ for p in parts] == [
        "rewardsmith_correctness",
        "rewardsmith_repetition",
    ]
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


def test_eos_from_the_processing_class():
    class Tok:
        eos_token_id = 0

    (fn,) = reward_funcs(SPEC, processing_class=Tok())
    assert [
        r["truncated"]
        for r in fn.scorer.records(
            *[call()[k] for k in ("prompts", "completions", "completion_ids")], step=None, columns={}
        )
    ] == [False, True, False, True]


def test_truncation_from_eos_and_num_tokens():
    pipe = load_spec({"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "tokens"})
    (fn,) = reward_funcs(pipe, eos_token_id=0)
    scorer = fn.scorer
    records = scorer.records(
        *[call()[k] for k in ("prompts", "completions", "completion_ids")],
        step=3,
        columns={"answer": ["5", "5", "2", "2"], "difficulty": [1, 1, 2, 2]},
    )
    assert [r["truncated"] for r in records] == [False, True, False, True]
    assert [r["num_tokens"] for r in records] == [2, 3, 2, 1]
    assert records[0]["step"] == 3 and records[0]["meta"] == {"difficulty": 1, "token_ids": [5, 0]}
    assert records[0]["prompt_id"] == records[1]["prompt_id"] != records[2]["prompt_id"]


def test_partial_groups_are_refused():
    (fn,) = reward_funcs(SPEC, num_generations=2)
    with pytest.raises(PartialGroupError, match="needs whole groups"):
        fn(**call(prompts=["2+3", "1+1", "1+1", "1+1"]))
    assert len(fn(**call())) == 4
    assert len(fn(**call(prompts=["1+1"] * 4))) == 4  # a prompt drawn twice: one group of 2·G


def test_group_aware_spec_refuses_unequal_groups_without_num_generations():
    (plain,) = reward_funcs(SPEC)
    assert len(plain(**call(prompts=["2+3", "1+1", "1+1", "1+1"]))) == 4  # nothing group-aware: any grouping is fine
    (fn,) = reward_funcs({**SPEC, "shaping": [{"name": "kimi"}]})
    with pytest.raises(PartialGroupError, match=r"sizes \[1, 3\]"):
        fn(**call(prompts=["2+3", "1+1", "1+1", "1+1"]))


def test_group_aware_per_component_sums_to_combined():
    spec = {**SPEC, "shaping": [{"name": "kimi", "coef": 0.5}, {"name": "repetition", "ngram": 1, "max_penalty": -0.5}]}
    (combined,) = reward_funcs(spec, num_generations=2)
    parts = reward_funcs(spec, per_component=True, num_generations=2)
    assert [p.__name__ for p in parts] == ["rewardsmith_correctness", "rewardsmith_kimi", "rewardsmith_repetition"]
    kw = call(
        completions=["#### 5", "a b #### 5", "#### 2", "#### 3"], completion_ids=[[1, 0], [1, 2, 3, 0], [1, 0], [1, 0]]
    )
    values = [p(**kw) for p in parts]
    # group 2+3: both correct, 2 and 4 tokens -> kimi 0.5*(+0.5), 0.5*(-0.5); group 1+1: equal lengths -> 0 for both
    assert values[1] == pytest.approx([0.25, -0.25, 0.0, 0.0])
    assert combined(**kw) == pytest.approx([sum(v) for v in zip(*values)])


def test_group_aware_tags_match_behaviour(tmp_path_factory):
    """Re-derive which shapers look at the rest of the group: same rollouts as one group per prompt vs
    one group per rollout, two batches so history-based shapers (HAPO, LASER-D) show it too. A shaper
    whose value moves with its group must carry the ``group_aware`` tag, and a tagged one must move."""
    rows = [
        ("p", 40, "1"),
        ("p", 120, "1"),
        ("p", 280, "1"),
        ("p", 200, "2"),
        ("q", 80, "3"),
        ("q", 360, "4"),
        ("q", 160, "4"),
        ("q", 240, "4"),
    ]

    def records(grouped):
        return [
            {
                "prompt_id": pid if grouped else f"{pid}{i}",
                "completion": " ".join([f"w{k}" for k in range(n)] + [f"#### {a}"]),
                "answer": "1" if pid == "p" else "4",
                "meta": {
                    "target_length": 160,
                    "ref_scores": [0.2, 0.6],
                    "step_rewards": [0.3, 0.8],
                    "turn_progress": [0.5],  # carl: one turn  # signal shapers:
                    "token_logprobs": [-0.1 * n, -1.0],
                    "ref_token_logprobs": [-1.0, -0.5],
                },
            }
            for i, (pid, n, a) in enumerate(rows)
        ]

    import _tiny_lm  # shapers reading model signals score with the hand-set tiny LM

    root = tmp_path_factory.mktemp("lm")
    signals = {"model": _tiny_lm.save(root / "policy"), "ref_model": _tiny_lm.save(root / "ref", _tiny_lm.REF_TABLE)}

    detected, tagged = set(), set()
    for entry in entries(
        "shaper"
    ):  # every shaper with its example options: a new one is checked without editing this test
        spec = {
            "verifier": {"name": "exact", "extract": ["hash"]},
            "length_unit": "words",
            "shaping": [{"name": entry.name, **entry.cls.example_options}],
        }
        if entry.cls.needs_signals:
            spec["signals"] = signals
        together, apart = load_spec(spec), load_spec(spec)
        if not all(
            np.allclose(together.score(records(True)).total, apart.score(records(False)).total) for _ in range(2)
        ):
            detected.add(entry.name)
        if entry.cls.group_aware:
            tagged.add(entry.name)
    assert detected == tagged


def test_docstring_examples():
    for module in (rk_trl, grouping):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_unknown_correctness_is_none():
    (fn,) = reward_funcs(SPEC)
    assert fn(**call(answer=[None, "5", "2", "2"]))[0] is None


def test_log_metric_gets_component_means_once_per_batch():
    parts = reward_funcs(SPEC, per_component=True)
    logged = []
    for p in parts:
        p(**call(log_metric=lambda k, v: logged.append((k, v))))
    means = dict(logged)
    assert len(logged) == len(means)  # the second function reused the batch and logged nothing again
    assert means["rewardsmith/correctness"] == pytest.approx(2 / 4)  # the no-answer rollout counts as 0
    assert means["rewardsmith/repetition"] == pytest.approx(-0.3 / 4)


def test_picklable_and_async():
    fns = reward_funcs(SPEC, per_component=True)
    clones = pickle.loads(pickle.dumps(fns))
    assert clones[0](**call()) == fns[0](**call())
    (afn,) = reward_funcs(SPEC, asynchronous=True)
    assert asyncio.iscoroutinefunction(afn.__call__)
    assert asyncio.run(afn(**call())) == pytest.approx([1.0, -0.8, 1.0, -1.0])


@pytest.mark.slow
def test_grpo_trainer_logs_rewardsmith_rewards(tmp_path):
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer

    torch.set_num_threads(2)
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128), tok, seed=0)
    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str((a + b) % 10)} for a in range(4) for b in range(2)])
    spec = {
        "verifier": {"name": "exact", "extract": ["hash", "whole"]},
        "base": {"wrong": -0.5},
        "length_unit": "tokens",
        "shaping": [
            {"name": "kimi", "coef": 0.5},
            {"name": "repetition", "ngram": 1, "max_penalty": -0.5, "unit": "tokens"},
        ],
    }
    funcs = reward_funcs(
        spec, per_component=True, processing_class=tok, num_generations=4
    )  # kimi needs TRL's groups whole
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
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        beta=0.0,
        reward_weights=[1.0] * len(funcs) + [0.0],
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=[*funcs, Capture()],
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[Logs()],
    )
    trainer.train()
    assert len(seen) == 2 and len(logs) == 2
    for (prompts, completions, ids, answers), log in zip(seen, logs):
        records = [
            {"prompt_id": p, "completion": c, "answer": a, "num_tokens": len(i), "meta": {"token_ids": i}}
            for p, c, a, i in zip(prompts, completions, answers, ids)
        ]
        ours = load_spec(spec).score(records)
        assert log["reward"] == pytest.approx(float(ours.total.mean()), abs=1e-5)
        for part in ("correctness", "kimi", "repetition"):
            assert log[f"rewards/rewardsmith_{part}/mean"] == pytest.approx(
                float(ours.components[part].mean()), abs=1e-5
            )
        assert log["rewardsmith/repetition"] == pytest.approx(
            float(ours.values["repetition"].mean()), abs=1e-5
        )  # log_metric
        assert (
            ours.components["repetition"].min() < 0 and np.abs(ours.components["kimi"]).max() > 0
        )  # non-trivial checks


def test_reward_funcs_start_the_workers_before_the_first_call():
    pipe = load_spec({"verifier": "math", "length_unit": "chars", "workers": 2})
    try:
        assert pipe.engine.started_workers() == 0
        (fn,) = reward_funcs(pipe)
        assert pipe.engine.started_workers() == 2  # at construction: the first step does not start them
        assert fn(prompts=["1+1?"], completions=[r"\boxed{2}"], answer=["2"]) == [1.0]
        assert pipe.engine.started_workers() == 2 and pipe.engine.stats.workers_replaced == 0
    finally:
        pipe.close()
