"""The lab's RL plumbing that runs without training: prompt order and the zero-weight probe."""

from pathlib import Path

import pytest

from rewardsmith.lab.model import build_tokenizer
from rewardsmith.lab.specs import BUILTIN_SPECS
from rewardsmith.lab.tasks import generate_problems, make_problem
from rewardsmith.lab.train import TaskProbe, replay_in_epochs, rl_dataset, rl_prompts

DRPO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "lab" / "drpo.yaml"


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


def test_replay_in_epochs_shuffles_each_epoch_and_refuses_an_empty_pool():
    import random

    pool = generate_problems(5, seed=3)
    order = replay_in_epochs(pool, 12, random.Random(0))
    assert len(order) == 12
    for start in (0, 5):  # each whole epoch is a permutation of the pool
        assert sorted(p.digits for p in order[start : start + 5]) == sorted(p.digits for p in pool)
    assert order[:5] != order[5:10]
    assert replay_in_epochs([], 0, random.Random(0)) == []
    with pytest.raises(ValueError, match="non-empty"):
        replay_in_epochs([], 3, random.Random(0))


def test_rl_dataset_columns():
    tok = build_tokenizer()
    ds = rl_dataset([make_problem([1, 2]), make_problem([3, 4, 5])], tok)
    assert ds.column_names == [
        "prompt",
        "answer",
        "prompt_id",
        "difficulty",
        "task",
        "necessary_tokens",
        "reference_responses",
    ]
    assert ds["task"] == ["carry", "carry"]
    assert ds["reference_responses"] == [["<think>1+2=3;</think>####3"], ["<think>3+4=7;7+5=2;</think>####2"]]
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
        task=["chain"] * 3,
        log_metric=lambda k, v: logged.__setitem__(k, v),
        trainer_state=None,
    )
    assert out == [1.0, 0.0, 1.0]
    assert logged["lab/redundant_share"] == pytest.approx(1 / 3)  # one check among three steps
    assert logged["lab/no_steps_share"] == pytest.approx(1 / 3)
    assert logged["lab/excess_tokens"] == pytest.approx((8 - 8 + 0) / 3)
    # in the carry task a chain-style check is not a check: it is neither necessary nor redundant
    probe(
        prompts=["1+2="],
        completions=completions[:1],
        completion_ids=ids[:1],
        answer=["3"],
        necessary_tokens=[11],
        task=["carry"],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert logged["lab/redundant_share"] == 0.0


def test_drpo_objective_is_split_off_the_reward_spec():
    from rewardsmith.lab.train import split_objective
    from rewardsmith.registry import SpecError
    from rewardsmith.spec import read_spec_file

    spec = read_spec_file(DRPO_SPEC)
    drpo, reward = split_objective(spec)
    assert (drpo.lam, drpo.tau, drpo.delta, drpo.beta) == (0.1, 10.0, 1e-4, 1e3) and "objective" not in reward
    assert split_objective(reward) == (None, reward)
    for bad in ({"name": "ppo"}, {"name": "drpo", "lamda": 0.1}, {"name": "drpo", "tau": 0}):
        with pytest.raises(SpecError, match="objective"):
            split_objective({**reward, "objective": bad})


@pytest.mark.slow  # trains the lab's policy for two steps under each spec
@pytest.mark.parametrize("name", ["drpo", "pear", "sar"])
def test_train_spec_runs_the_objective_and_policy_signal_specs(name):
    torch = pytest.importorskip("torch")
    from rewardsmith.lab.model import ModelConfig, build_model
    from rewardsmith.lab.train import RLConfig, train_spec
    from rewardsmith.spec import read_spec_file

    torch.set_num_threads(2)
    tok = build_tokenizer()
    base = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    config = RLConfig(
        steps=2, prompts_per_step=4, num_generations=4, prompt_pool=8, max_completion_length=16, bf16=False
    )
    spec = read_spec_file(DRPO_SPEC) if name == "drpo" else BUILTIN_SPECS[name]
    policy, curve = train_spec(base, tok, spec, generate_problems(40, seed=0), config, seed=0)
    assert len(curve) == 2
    assert all({"accuracy", "mean_tokens", "correct_neg_adv_share", "correct_rollouts"} <= set(row) for row in curve)
    assert policy is not base


def test_correct_negative_share_on_a_grpo_group_with_a_length_reward():
    from rewardsmith.lab.train import correct_negative_share

    # one group: correct short (1.0), correct long (0.2: length-penalised), correct mid (0.9), wrong (0)
    rewards = [1.0, 0.2, 0.9, 0.0]
    mean = sum(rewards) / 4  # 0.525
    advantages = [r - mean for r in rewards]  # 0.475, -0.325, 0.375, -0.525 (std scaling keeps the signs)
    assert correct_negative_share([True, True, True, False], advantages) == (pytest.approx(1 / 3), 3)
    assert correct_negative_share([False, False, False, True], advantages) == (1.0, 1)
    assert correct_negative_share([False] * 4, advantages) == (0.0, 0)  # no correct rollout
    assert correct_negative_share([], []) == (0.0, 0)
    with pytest.raises(ValueError):
        correct_negative_share([True], [0.1, 0.2])


def test_drpo_weights_on_correct_rollouts_are_the_length_softmax_and_never_negative():
    import math

    torch = pytest.importorskip("torch")
    from rewardsmith.lab.train import correct_negative_share, drpo_correct_weights
    from rewardsmith.objectives.drpo import CORRECT, NEITHER, WRONG, DRPOConfig

    groups = torch.tensor([0, 0, 0, 1, 1, 2])
    labels = torch.tensor([CORRECT, CORRECT, WRONG, CORRECT, CORRECT, NEITHER])
    lengths = torch.tensor([10.0, 30.0, 5.0, 8.0, 8.0, 3.0])
    w = drpo_correct_weights(lengths, groups, labels, DRPOConfig(lam=0.1), max_length=40.0)
    # group 0: softmax((1 - L/40)/0.1) over L = 10, 30 -> softmax(7.5, 2.5); group 1 has no wrong rollout: dropped
    e = math.exp(-5.0)
    assert w[0].item() == pytest.approx(1 / (1 + e)) and w[1].item() == pytest.approx(e / (1 + e))
    assert w[3].item() == 0.0 and w[4].item() == 0.0
    assert math.isnan(w[2].item()) and math.isnan(w[5].item())
    correct = (labels == CORRECT).tolist()
    assert correct_negative_share(correct, w.tolist()) == (0.0, 4)
    # the same group under GRPO with a length reward gives the long correct rollout a negative advantage
    rewards = [1 - 10 / 40, 1 - 30 / 40, 0.0]
    mean = sum(rewards) / 3
    assert correct_negative_share(correct[:3], [r - mean for r in rewards]) == (0.5, 2)


def test_policy_signal_specs_get_the_policy_as_their_signals_model_and_trainer():
    pytest.importorskip("torch")
    from rewardsmith.integrations.trl_drpo import DRPOTrainer
    from rewardsmith.integrations.trl_signals import PolicySignalsGRPOTrainer
    from rewardsmith.lab.model import ModelConfig, build_model
    from rewardsmith.lab.train import POLICY_SIGNALS, _lab_trainer, _spec_reward_funcs

    tok = build_tokenizer()
    policy = build_model(ModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32), tok, seed=0)
    needs = {}
    for name in ("pear", "sar", "kimi"):
        funcs, needs[name], pipeline = _spec_reward_funcs(BUILTIN_SPECS[name], policy, tok, 4, 16, "cpu")
        assert len(funcs) == 1
        if name != "kimi":  # the trained policy itself is the spec's signals model
            assert pipeline.scorers[POLICY_SIGNALS].model is policy and policy.training
        pipeline.close()
    assert needs == {"pear": True, "sar": False, "kimi": False}  # pear reads the policy's entropies from the rollouts
    assert issubclass(_lab_trainer(False, True), PolicySignalsGRPOTrainer)
    both = _lab_trainer(True, True)
    assert issubclass(both, DRPOTrainer) and issubclass(both, PolicySignalsGRPOTrainer)
