"""The lab's RL plumbing that runs without training: prompt order and the zero-weight probe."""

import pytest

from rewardsmith.lab.model import build_tokenizer
from rewardsmith.lab.tasks import generate_problems, make_problem
from rewardsmith.lab.train import TaskProbe, rl_dataset, rl_prompts


def test_rl_prompts_replay_a_pool_without_repeats_inside_a_step():
    problems = generate_problems(600, seed=0)
    order = rl_prompts(problems, pool_size=24, steps=10, per_step=8, seed=1)
    assert len(order) == 80
    assert len({p.digits for p in order}) == 24
    for i in range(0, 80, 8):
        assert len({p.digits for p in order[i : i + 8]}) == 8
    assert {p.difficulty for p in order} == set(range(2, 8))
    assert order == rl_prompts(problems, pool_size=24, steps=10, per_step=8, seed=1)
    assert order != rl_prompts(problems, pool_size=24, steps=10, per_step=8, seed=2)


def test_rl_dataset_columns():
    tok = build_tokenizer()
    ds = rl_dataset([make_problem([1, 2]), make_problem([3, 4, 5])], tok)
    assert ds.column_names == ["prompt", "answer", "prompt_id", "difficulty", "necessary_tokens"]
    assert ds["necessary_tokens"] == [11, 17] and ds["answer"] == ["3", "2"] and ds["prompt_id"] == ["12", "345"]


def test_probe_scores_correctness_and_logs_hand_computed_metrics():
    logged = {}
    probe = TaskProbe()
    assert probe.__name__ == "lab_probe"
    completions = [
        "<think>1+2=3;chk3-2=1ok;</think>####3",
        "####4",
        [{"role": "assistant", "content": "<think>1+2=3;</think>####3"}],
    ]
    ids = [[0] * 19, [0] * 3, [0] * 11]
    out = probe(
        prompts=["1+2="] * 3,
        completions=completions,
        completion_ids=ids,
        answer=["3"] * 3,
        necessary_tokens=[11] * 3,
        log_metric=lambda k, v: logged.__setitem__(k, v),
        trainer_state=None,
    )
    assert out == [1.0, 0.0, 1.0]
    assert logged["lab/redundant_share"] == pytest.approx(1 / 3)  # one check among three steps
    assert logged["lab/no_steps_share"] == pytest.approx(1 / 3)
    assert logged["lab/excess_tokens"] == pytest.approx((8 - 8 + 0) / 3)
