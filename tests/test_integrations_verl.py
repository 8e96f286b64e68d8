"""verl adapter, run through verl's own batch reward manager and advantage registry."""

import numpy as np
import pytest

from rewardkit import load_spec
from rewardkit.integrations import verl as rk_verl

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

SPEC = {"verifier": {"name": "exact", "extract": ["hash"]}, "base": {"wrong": -0.5}, "length_unit": "words",
        "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}]}


def test_batch_function_through_verl_batch_manager(tmp_path, monkeypatch):
    from verl import DataProto
    from verl.workers.reward_manager.batch import BatchRewardManager

    from rewardkit.lab.model import build_tokenizer

    spec_path = tmp_path / "spec.yaml"
    import yaml

    spec_path.write_text(yaml.safe_dump(SPEC))
    monkeypatch.setenv(rk_verl.SPEC_ENV, str(spec_path))
    tok = build_tokenizer()
    texts = ["1+2=3 ####3", "1+2=4 ####4", "3+3=6 ####6", "5 5 5"]
    enc = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, enc))
    responses = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids in enc])
    prompts = torch.tensor([[tok.pad_token_id, 1]] * 4)
    mask = torch.cat([torch.ones(4, 2, dtype=torch.long), torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in enc])], dim=1)
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": mask},
        non_tensors={"data_source": np.array(["toy"] * 4, dtype=object),
                     "reward_model": np.array([{"ground_truth": "3"}, {"ground_truth": "3"}, {"ground_truth": "6"}, {"ground_truth": "0"}], dtype=object),
                     "extra_info": np.array([{"index": 0}, {"index": 0}, {"index": 1}, {"index": 2}], dtype=object)},
    )
    manager = BatchRewardManager(tokenizer=tok, num_examine=0, compute_score=rk_verl.compute_score_batch)
    out = manager(data, return_dict=True)
    final = out["reward_tensor"].sum(-1).tolist()
    expected = load_spec(SPEC).score([{"prompt_id": str(i), "completion": tok.decode(e, skip_special_tokens=True), "answer": a}
                                      for i, e, a in zip([0, 0, 1, 2], enc, ["3", "3", "6", "0"])]).total.tolist()
    assert final == pytest.approx(expected)
    assert final[0] == 1.0 and final[1] < 0
    assert set(out["reward_extra_info"]) >= {"score", "correctness", "repetition", "timeout", "error"}
    assert out["reward_tensor"][0, len(enc[0]) - 1] == final[0]  # the reward sits on the last response token


def test_per_sample_compute_score_and_group_aware_refusal():
    fn = rk_verl.make_compute_score(SPEC)
    assert fn("toy", "####3", "3")["score"] == 1.0
    assert fn("toy", "####2", "3", extra_info={"index": 5})["score"] == -0.5
    names = [e.name for e in __import__("rewardkit.registry", fromlist=["entries"]).entries("shaper")]
    if "kimi" in names:
        with pytest.raises(ValueError, match="need whole groups"):
            rk_verl.make_compute_score({"verifier": "exact", "shaping": [{"name": "kimi"}]})


def test_missing_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(rk_verl.SPEC_ENV, raising=False)
    with pytest.raises(RuntimeError, match="REWARDKIT_SPEC"):
        rk_verl.compute_score("toy", "####3", "3")


def test_advantages_registered_in_verl_match_ours():
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    names = rk_verl.register_advantages()
    assert "rewardkit_grpo" in names and rk_verl.register_advantages() == names  # idempotent
    rng = np.random.default_rng(0)
    n, width = 12, 6
    lengths = rng.integers(1, width + 1, size=n)
    mask = torch.tensor([[1.0] * l + [0.0] * (width - l) for l in lengths])
    rewards = rng.integers(0, 2, size=n).astype(float)
    tlr = torch.zeros(n, width)
    tlr[torch.arange(n), torch.tensor(lengths - 1)] = torch.tensor(rewards, dtype=torch.float32)
    index = np.array(["a", "b", "c"] * 4, dtype=object)
    ours, _ = get_adv_estimator_fn("rewardkit_grpo")(token_level_rewards=tlr, response_mask=mask, index=index)
    theirs, _ = get_adv_estimator_fn("grpo")(token_level_rewards=tlr, response_mask=mask, index=index)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
