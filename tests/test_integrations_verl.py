"""verl adapter, run through verl's own loaders, reward managers and advantage registry."""

import asyncio
import os
import subprocess
import sys

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.integrations import verl as rk_verl

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

SPEC = {
    "verifier": {"name": "exact", "extract": ["hash"]},
    "base": {"wrong": -0.5},
    "length_unit": "words",
    "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}],
}


@pytest.fixture
def spec_env(tmp_path, monkeypatch):
    import yaml

    def use(spec):
        path = tmp_path / f"spec{abs(hash(str(spec)))}.yaml"
        path.write_text(yaml.safe_dump(spec))
        monkeypatch.setenv(rk_verl.SPEC_ENV, str(path))
        return path

    return use


def tokenizer():
    from rewardsmith.lab.model import build_tokenizer

    return build_tokenizer()


def response_batch(tok, texts, ground_truths, indices):
    """A verl DataProto as the trainer builds it: prompts, right-padded responses, attention mask."""
    from verl import DataProto

    enc = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, enc))
    n = len(texts)
    responses = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids in enc])
    mask = torch.cat(
        [torch.ones(n, 2, dtype=torch.long), torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in enc])],
        dim=1,
    )
    data = DataProto.from_dict(
        tensors={"prompts": torch.tensor([[tok.pad_token_id, 1]] * n), "responses": responses, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["toy"] * n, dtype=object),
            "reward_model": np.array([{"ground_truth": g} for g in ground_truths], dtype=object),
            "extra_info": np.array([{"index": i} for i in indices], dtype=object),
        },
    )
    return data, enc


def test_per_sample_through_verl_reward_loop(spec_env):
    """verl 0.9's path: the function loaded from the trainer config, called by the reward loop's naive manager."""
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    spec_env(SPEC)
    tok = tokenizer()
    texts, truths = ["1+2=3 ####3", "1+2=4 ####4", "no answer here"], ["3", "3", "6"]
    data, enc = response_batch(tok, texts, truths, [0, 0, 1])
    expected = (
        load_spec(SPEC)
        .score(
            [
                {"prompt_id": str(i), "completion": tok.decode(e, skip_special_tokens=True), "answer": a}
                for i, (e, a) in enumerate(zip(enc, truths))
            ]
        )
        .total.tolist()
    )
    for path in ("pkg://rewardsmith.integrations.verl", rk_verl.__file__):  # verl loads either form
        config = OmegaConf.create(
            {"reward": {"custom_reward_function": {"path": path, "name": "compute_score", "reward_kwargs": {}}}}
        )
        fn = get_custom_reward_fn(config)

        async def run_all():
            manager = NaiveRewardManager(config, tok, fn)
            return [await manager.run_single(data[i : i + 1]) for i in range(len(data))]

        outs = asyncio.run(run_all())
        assert [o["reward_score"] for o in outs] == pytest.approx(expected)
        assert expected[0] == 1.0 and expected[1] == -0.5 and expected[2] == 0.0
        keys = {frozenset(o["reward_extra_info"]) for o in outs}
        assert len(keys) == 1 and set(next(iter(keys))) >= {
            "score",
            "acc",
            "correctness",
            "repetition",
            "correct_known",
            "timeout",
            "error",
        }


def test_batch_function_through_verl_batch_manager(spec_env):
    from verl.workers.reward_manager.batch import BatchRewardManager

    spec_env(SPEC)
    tok = tokenizer()
    truths, indices = ["3", "3", "6", "0"], [0, 0, 1, 2]
    data, enc = response_batch(tok, ["1+2=3 ####3", "1+2=4 ####4", "3+3=6 ####6", "5 5 5"], truths, indices)
    manager = BatchRewardManager(tokenizer=tok, num_examine=0, compute_score=rk_verl.compute_score_batch)
    out = manager(data, return_dict=True)
    final = out["reward_tensor"].sum(-1).tolist()
    expected = (
        load_spec(SPEC)
        .score(
            [
                {"prompt_id": str(i), "completion": tok.decode(e, skip_special_tokens=True), "answer": a}
                for i, e, a in zip(indices, enc, truths)
            ]
        )
        .total.tolist()
    )
    assert final == pytest.approx(expected)
    assert final[0] == 1.0 and final[1] < 0
    assert set(out["reward_extra_info"]) >= {"score", "acc", "correctness", "repetition", "timeout", "error"}
    assert out["reward_tensor"][0, len(enc[0]) - 1] == final[0]  # the reward sits on the last response token


def test_batch_function_groups_by_index_for_group_aware_shapers():
    spec = {
        "verifier": {"name": "exact", "extract": ["hash"]},
        "length_unit": "words",
        "shaping": [{"name": "kimi", "coef": 1.0}],
    }
    pipe = load_spec(spec)
    texts = ["####3", "a b c ####3", "####6", "a b c d e ####6"]
    out = rk_verl.score_batch(
        pipe, None, texts, ["3", "3", "6", "6"], [{"index": 0}, {"index": 0}, {"index": 1}, {"index": 1}]
    )
    # Kimi within each group of two correct rollouts: the shorter gets +0.5, the longer -0.5 (lambda = 0.5 - (L-Lmin)/(Lmax-Lmin))
    assert [o["kimi"] for o in out] == pytest.approx([0.5, -0.5, 0.5, -0.5])
    assert [o["score"] for o in out] == pytest.approx([1.5, 0.5, 1.5, 0.5])


def test_unknown_correctness_is_finite_with_a_flag():
    fn = rk_verl.make_compute_score({"verifier": {"name": "math", "extract": ["boxed"]}, "length_unit": "words"})
    out = fn("toy", "\\boxed{2}", "\\frac{1}{")  # unparseable reference: correctness unknown
    assert out["correct_known"] == 0.0 and out["acc"] == 0.0 and out["correctness"] == 0.0
    assert all(np.isfinite(v) for v in out.values())


def test_per_sample_refuses_group_stateful_and_scheduled_shapers():
    fn = rk_verl.make_compute_score(SPEC)
    assert fn("toy", "####3", "3")["score"] == 1.0
    assert fn("toy", "####2", "3", extra_info={"index": 5})["score"] == -0.5
    for shaper in (
        {"name": "kimi"},
        {"name": "hapo"},
        {"name": "meanstd"},
        {"name": "budget_curriculum", "start": 100, "end": 10, "every": 1},
    ):
        with pytest.raises(
            ValueError, match=f"'{shaper['name']}'.*one rollout at a time|one rollout at a time.*'{shaper['name']}'"
        ):
            rk_verl.make_compute_score({"verifier": "exact", "shaping": [shaper]})


def test_missing_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(rk_verl.SPEC_ENV, raising=False)
    with pytest.raises(RuntimeError, match="REWARDSMITH_SPEC"):
        rk_verl.compute_score("toy", "####3", "3")


def _random_batch(seed=0, n=12, width=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, size=n)
    mask = torch.tensor([[1.0] * l + [0.0] * (width - l) for l in lengths])
    rewards = rng.integers(0, 2, size=n).astype(float) + rng.normal(0, 0.1, size=n)
    tlr = torch.zeros(n, width)
    tlr[torch.arange(n), torch.tensor(lengths - 1)] = torch.tensor(rewards, dtype=torch.float32)
    return tlr, mask, np.array(["a", "b", "c"] * (n // 3), dtype=object)


@pytest.mark.parametrize("ours_name, verl_name", [("rewardsmith_grpo", "grpo"), ("rewardsmith_rloo", "rloo")])
def test_advantages_registered_in_verl_match_verls_own(ours_name, verl_name):
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    names = rk_verl.register_advantages()
    assert ours_name in names and rk_verl.register_advantages() == names  # idempotent
    tlr, mask, index = _random_batch()
    ours, ours_returns = get_adv_estimator_fn(ours_name)(
        token_level_rewards=tlr, response_mask=mask, index=index, config=None
    )
    theirs, _ = get_adv_estimator_fn(verl_name)(token_level_rewards=tlr, response_mask=mask, index=index, config=None)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_returns, ours)
    assert (ours[mask == 0] == 0).all()


@pytest.mark.slow  # starts a fresh Python process that imports verl
def test_plugin_module_registers_in_a_fresh_verl_process():
    """verl imports VERL_USE_EXTERNAL_MODULES in each of its processes (where the advantage lookup runs)."""
    code = (
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn; "
        "print(get_adv_estimator_fn('rewardsmith_canon').__name__)"
    )
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": "rewardsmith.integrations.verl_plugin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("rewardsmith_canon")
