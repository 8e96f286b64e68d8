"""Group-aware and stateful shaping in verl's advantage step, through verl's own reward loop and compute_advantage.

Each step: verl's naive reward manager calls ``compute_score`` (``REWARDSMITH_VERL_ADVANTAGE=1``) one
rollout at a time, verl assembles ``rm_scores``, and verl's ``compute_advantage`` calls the registered
``rewardsmith_spec`` estimator; the result must equal ``load_spec(spec).score`` on the same rollouts
with its own state file, step by step, the estimator rebuilt (state reloaded) between steps.
"""

import asyncio
import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
import yaml

from rewardsmith import load_spec
from rewardsmith.integrations import verl as rk_verl
from rewardsmith.integrations import verl_shaping as vs

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

BASE = {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0}
SHAPERS = {
    "kimi": {"name": "kimi", "coef": 0.5},
    "laser_d": {"name": "laser_d", "lower": 6, "upper": 36, "interval": 6, "anchor": None, "update_every": 1},
    "hapo": {"name": "hapo"},
}
ANSWERS = {0: "3", 1: "7", 2: "5"}


def spec_for(shaper, state, advantage="grpo"):
    return {
        "verifier": {"name": "exact", "extract": ["hash"]},
        "base": BASE,
        "length_unit": "tokens",
        "shaping": [shaper],
        "advantage": {"name": advantage},
        "state": str(state),
        "workers": 1,
    }


def write(path, spec):
    path.write_text(yaml.safe_dump(spec))
    return path


def tokenizer():
    from rewardsmith.lab.model import build_tokenizer

    return build_tokenizer()


def text(filler, answer):
    """``filler`` six-token steps, then the answer after ``####`` (None: no answer at all)."""
    body = "1+1=2;" * filler
    return body + ("" if answer is None else f"####{answer}")


def rollouts(step):
    """(dataset index, completion) per rollout: three prompts, four rollouts each; step 2 is shorter."""
    fillers = [[1, 3, 2, 2], [2, 1, 6, 1], [2, 1, 3, 1]] if step == 1 else [[1, 2, 5, 4], [2, 5, 3, 1], [1, 1, 5, 4]]
    wrong = {(0, 1): "4", (1, 2): "8", (2, 3): None, (0, 3): "2"}
    out = []
    for index, group in enumerate(fillers):
        for j, f in enumerate(group):
            out.append((index, text(f, wrong.get((index, j), ANSWERS[index]))))
    return out


def verl_batch(tok, rows, width=None):
    """The DataProto verl's trainer holds before the reward: prompts, right-padded responses,
    attention mask, the dataset columns and a fresh uid per prompt (verl draws new ones each step)."""
    from verl import DataProto

    enc = [tok(t, add_special_tokens=False)["input_ids"] for _, t in rows]
    width = width or max(map(len, enc)) + 2
    n = len(rows)
    responses = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids in enc])
    mask = torch.cat(
        [torch.ones(n, 2, dtype=torch.long), torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in enc])],
        dim=1,
    )
    uids = {index: str(uuid.uuid4()) for index, _ in rows}
    data = DataProto.from_dict(
        tensors={"prompts": torch.tensor([[tok.pad_token_id, 1]] * n), "responses": responses, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["toy"] * n, dtype=object),
            "reward_model": np.array([{"ground_truth": ANSWERS[i]} for i, _ in rows], dtype=object),
            "extra_info": np.array([{"index": i, "split": "train"} for i, _ in rows], dtype=object),
            "uid": np.array([uids[i] for i, _ in rows], dtype=object),
        },
    )
    return data, enc


def reward_step(tok, data):
    """verl 0.9's reward path: the configured function through the naive reward manager, one rollout per
    call, then the trainer's ``token_level_scores`` and extra info as ``RayPPOTrainer`` stores them."""
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.ray_trainer import compute_response_mask
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://rewardsmith.integrations.verl",
                    "name": "compute_score",
                    "reward_kwargs": {},
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)

    async def run_all():
        manager = NaiveRewardManager(config, tok, fn)
        return [await manager.run_single(data[i : i + 1]) for i in range(len(data))]

    outs = asyncio.run(run_all())
    data.batch["token_level_scores"] = RewardManagerBase.assemble_rm_scores(data, [o["reward_score"] for o in outs])
    extra = {k: np.array([o["reward_extra_info"][k] for o in outs]) for k in outs[0]["reward_extra_info"]}
    data.non_tensor_batch.update(extra)
    data.batch["token_level_rewards"] = data.batch["token_level_scores"]
    data.batch["response_mask"] = compute_response_mask(data)
    return data


def advantage_step(data, spec_path, estimator=vs.ESTIMATOR):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.ray_trainer import compute_advantage

    algorithm = OmegaConf.create(
        {
            "adv_estimator": estimator,
            "gamma": 1.0,
            "lam": 1.0,
            "use_kl_in_reward": False,
            "rewardsmith_spec": str(spec_path),
        }
    )
    return compute_advantage(data, adv_estimator=estimator, num_repeat=4, config=algorithm)


@pytest.fixture
def fresh_estimator():
    """Rebuild the registered ``rewardsmith_spec`` (a new estimator, pipelines and state loaded from file)."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn

    def rebuild():
        ADV_ESTIMATOR_REGISTRY.pop(vs.ESTIMATOR, None)
        vs.register_spec_advantage()
        return get_adv_estimator_fn(vs.ESTIMATOR)

    yield rebuild
    rebuild()


@pytest.fixture
def verl_env(monkeypatch):
    def use(spec_path):
        monkeypatch.setenv(rk_verl.SPEC_ENV, str(spec_path))
        monkeypatch.setenv(vs.ADVANTAGE_ENV, "1")

    return use


def reference_records(tok, rows, enc, width):
    return [
        {
            "prompt_id": str(index),
            "completion": tok.decode(ids, skip_special_tokens=True),
            "answer": ANSWERS[index],
            "num_tokens": len(ids),
            "truncated": len(ids) >= width,
        }
        for (index, _), ids in zip(rows, enc)
    ]


def state_of(path):
    data = json.loads(path.read_text())
    return data["step"], data["components"]


def assert_step_equal(data, enc, estimator, expected):
    adv = data.batch["advantages"]
    for i, ids in enumerate(enc):
        assert adv[i, : len(ids)].tolist() == pytest.approx([expected.advantages[i]] * len(ids), abs=1e-6)
        assert (adv[i, len(ids) :] == 0).all()
    torch.testing.assert_close(data.batch["returns"], adv)
    got = estimator.last_scores
    np.testing.assert_allclose(got.total, expected.total, atol=1e-12)
    assert got.components.keys() == expected.components.keys()
    for key in expected.components:
        np.testing.assert_allclose(got.components[key], expected.components[key], atol=1e-12)


def cli_score(spec_path, records, tmp_path):
    """``rewardsmith score`` as a user runs it: (rewards, advantages) of the scored records."""
    rollouts_path, out = tmp_path / "rollouts.jsonl", tmp_path / "scored.jsonl"
    rollouts_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = subprocess.run(
        [sys.executable, "-m", "rewardsmith", "score", str(rollouts_path), "--spec", str(spec_path), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    return [r["reward"] for r in scored], [r["advantage"] for r in scored]


@pytest.mark.parametrize("name", ["kimi", "laser_d", "hapo"])
def test_two_steps_state_reloaded_equal_rewardsmith_score(name, tmp_path, verl_env, fresh_estimator):
    tok = tokenizer()
    ours = write(tmp_path / "ours.yaml", spec_for(SHAPERS[name], tmp_path / "ours_state.json"))
    ref_path = write(tmp_path / "ref.yaml", spec_for(SHAPERS[name], tmp_path / "ref_state.json"))
    cli_path = write(tmp_path / "cli.yaml", spec_for(SHAPERS[name], tmp_path / "cli_state.json"))
    verl_env(ours)
    for step in (1, 2):
        estimator = fresh_estimator()  # a new estimator and pipeline each step: state only from the file
        rows = rollouts(step)
        data, enc = verl_batch(tok, rows)
        data = advantage_step(reward_step(tok, data), ours)
        records = reference_records(tok, rows, enc, data.batch["responses"].shape[1])
        expected = load_spec(ref_path).score(records)
        assert_step_equal(data, enc, estimator, expected)
        if name == "hapo":  # the CLI too, its own state file carried between the two runs
            rewards, advantages = cli_score(cli_path, records, tmp_path)
            np.testing.assert_allclose(estimator.last_scores.total, rewards, atol=1e-12)
            np.testing.assert_allclose(data.batch["advantages"][:, 0].numpy(), advantages, atol=1e-6)  # first token
            assert state_of(tmp_path / "cli_state.json") == state_of(tmp_path / "ours_state.json")
        moved = np.any(expected.components[name] != 0)
        if name != "kimi":
            assert state_of(tmp_path / "ours_state.json") == state_of(tmp_path / "ref_state.json")
        assert data.non_tensor_batch["acc"].tolist() == (expected.correct == 1.0).astype(float).tolist()
    assert moved, "the shaper must move some reward at step 2 for the test to bite"
    if name != "kimi":  # step 2 used what step 1 left: scored from a blank state it differs
        blank = write(tmp_path / "blank.yaml", spec_for(SHAPERS[name], tmp_path / "blank_state.json"))
        fresh = load_spec(blank).score(reference_records(tok, rows, enc, data.batch["responses"].shape[1]))
        assert not np.allclose(fresh.total, expected.total)
        assert state_of(tmp_path / "ours_state.json")[0] == 2


def test_edge_groups_and_verl_padding(tmp_path, fresh_estimator):
    """A group of one, an all-wrong group, a group of equal lengths and a no-answer row, plus a row of
    verl's batch padding (no response token, zero reward, another group's uid): advantage 0, left out."""
    spec = spec_for({"name": "kimi", "coef": 0.5}, tmp_path / "s.json")
    spec_path = write(tmp_path / "spec.yaml", spec)
    fn = rk_verl.make_compute_score(spec_path, advantage_step=True)
    rows = [  # (group, completion, answer, length)
        ("solo", "####3", "3", 4),
        ("bad", "####1", "3", 3),
        ("bad", "####2", "3", 7),
        ("bad", "no", "3", 5),
        ("even", "####5", "5", 6),
        ("even", "####5", "5", 6),
        ("even", "####4", "5", 6),
    ]
    width = 10
    tlr, mask = torch.zeros(len(rows) + 1, width), torch.zeros(len(rows) + 1, width)
    for i, (_, completion, answer, length) in enumerate(rows):
        tlr[i, length - 1] = fn("toy", completion, answer, {"index": i})["score"]
        mask[i, :length] = 1
    uid = np.array([g for g, *_ in rows] + ["even"], dtype=object)  # the padding row copies a real uid
    estimator = fresh_estimator()
    adv, returns = estimator(
        token_level_rewards=tlr, response_mask=mask, index=uid, config={"rewardsmith_spec": spec_path}
    )
    expected = load_spec(spec_path, state=None).score(
        [{"prompt_id": g, "completion": c, "answer": a, "num_tokens": n} for g, c, a, n in rows]
    )
    for i, (*_, length) in enumerate(rows):
        assert adv[i, :length].tolist() == pytest.approx([expected.advantages[i]] * length, abs=1e-6)
    assert (adv[-1] == 0).all() and (adv[mask == 0] == 0).all()
    torch.testing.assert_close(returns, adv)
    np.testing.assert_allclose(estimator.last_scores.total, expected.total)
    # by hand: kimi λ = 0.5 − (L − Lmin)/(Lmax − Lmin); c·min(0, λ) on wrong answered rows, nothing unanswered
    # a group of one keeps its reward as advantage (GRPO's singleton='reward', std 0 + eps)
    assert expected.total[0] == 1.0 and expected.advantages[0] == pytest.approx(1.0, abs=1e-5)
    assert expected.total[1:4].tolist() == [-0.5, -0.5 - 0.25, -1.0]  # all wrong: L = 3, 7 (and 5, no answer)
    assert expected.components["kimi"][4:].tolist() == [0.0, 0.0, 0.0]  # equal lengths: no length signal


def test_failed_step_leaves_state_unchanged(tmp_path, verl_env, fresh_estimator, monkeypatch):
    tok = tokenizer()
    ours = write(tmp_path / "ours.yaml", spec_for(SHAPERS["hapo"], tmp_path / "ours_state.json"))
    ref_path = write(tmp_path / "ref.yaml", spec_for(SHAPERS["hapo"], tmp_path / "ref_state.json"))
    verl_env(ours)
    estimator = fresh_estimator()
    first, enc1 = verl_batch(tok, rollouts(1))
    advantage_step(reward_step(tok, first), ours)
    load_spec(ref_path).score(reference_records(tok, rollouts(1), enc1, first.batch["responses"].shape[1]))
    saved = (tmp_path / "ours_state.json").read_bytes()
    rows = rollouts(2)
    data, enc = verl_batch(tok, rows)
    data = reward_step(tok, data)

    broken = data.batch["token_level_rewards"].clone()
    broken[0, len(enc[0]) - 1] = 1.0  # a plain reward among the codes (another reward function's)
    bad = data.select_idxs(np.arange(len(data)))
    bad.batch["token_level_rewards"] = broken
    with pytest.raises(ValueError, match="not a rewardsmith verification code"):
        advantage_step(bad, ours)

    pipe = estimator.pipeline({"rewardsmith_spec": str(ours)})
    before = (pipe.state.step, json.dumps(pipe.state.components, sort_keys=True))

    def disk_full():
        raise OSError("disk full")

    monkeypatch.setattr(pipe, "save_state", disk_full)
    with pytest.raises(OSError, match="disk full"):
        advantage_step(data, ours)
    assert (tmp_path / "ours_state.json").read_bytes() == saved
    assert (pipe.state.step, json.dumps(pipe.state.components, sort_keys=True)) == before
    monkeypatch.undo()
    verl_env(ours)

    data = advantage_step(data, ours)  # the retried step scores as if the failures never happened
    expected = load_spec(ref_path).score(reference_records(tok, rows, enc, data.batch["responses"].shape[1]))
    assert_step_equal(data, enc, estimator, expected)
    assert state_of(tmp_path / "ours_state.json") == state_of(tmp_path / "ref_state.json")


def direct_step(estimator, spec_path, rows, width=12):
    """Codes from the per-sample function, placed as verl places rewards; the estimator called as
    ``compute_advantage`` calls it. ``rows``: (group, completion, answer, length)."""
    fn = rk_verl.make_compute_score(spec_path, advantage_step=True)
    tlr, mask = torch.zeros(len(rows), width), torch.zeros(len(rows), width)
    for i, (_, completion, answer, length) in enumerate(rows):
        tlr[i, length - 1] = fn("toy", completion, answer, {"index": i})["score"]
        mask[i, :length] = 1
    uid = np.array([g for g, *_ in rows], dtype=object)
    return estimator(token_level_rewards=tlr, response_mask=mask, index=uid, config={"rewardsmith_spec": spec_path})


def test_format_scores_travel_exactly(tmp_path, fresh_estimator):
    """tag_count's quarter scores in add mode, and a gate, reach the step exactly."""
    think = "<think>\nx\n</think>\n<answer>\n####3\n</answer>"
    rows = [
        ("p", think, "3", 9),
        ("p", "<think>\nx\n</think>\n####3", "3", 5),
        ("p", "####4", "3", 2),
        ("q", "####3", "3", 4),
    ]
    for fmt in ({"name": "tag_count", "mode": "add", "weight": 0.5}, {"name": "think_answer", "mode": "gate"}):
        spec = {**spec_for({"name": "kimi", "coef": 0.5}, tmp_path / "s.json"), "format": fmt, "state": None}
        spec_path = write(tmp_path / "spec.yaml", spec)
        estimator = fresh_estimator()
        adv, _ = direct_step(estimator, spec_path, rows)
        expected = load_spec(spec_path).score(
            [{"prompt_id": g, "completion": c, "answer": a, "num_tokens": n} for g, c, a, n in rows]
        )
        np.testing.assert_allclose(estimator.last_scores.total, expected.total, atol=1e-12)
        np.testing.assert_allclose(adv[:, 0].numpy(), expected.advantages, atol=1e-6)
        assert len(set(expected.values["format"].tolist())) > 1  # the rows' format scores differ


def test_per_sample_compute_score_refuses_alone_and_verifies_for_the_advantage_step(tmp_path, monkeypatch):
    spec_path = write(tmp_path / "spec.yaml", spec_for(SHAPERS["hapo"], tmp_path / "s.json"))
    monkeypatch.setenv(rk_verl.SPEC_ENV, str(spec_path))
    monkeypatch.delenv(vs.ADVANTAGE_ENV, raising=False)
    with pytest.raises(ValueError, match=r"one rollout at a time.*REWARDSMITH_VERL_ADVANTAGE=1.*rewardsmith_spec"):
        rk_verl.compute_score("toy", "####3", "3", {"index": 0})
    with pytest.raises(ValueError, match="REWARDSMITH_VERL_ADVANTAGE=1"):
        rk_verl.make_compute_score(spec_path)
    monkeypatch.setenv(vs.ADVANTAGE_ENV, "1")
    out = rk_verl.compute_score("toy", "####3", "3", {"index": 7})
    assert vs.CODE_BASE <= out["score"] < vs.CODE_END and out["acc"] == 1.0 and out["correct_known"] == 1.0
    assert out == rk_verl.compute_score("toy", "####3", "3", {"index": 7})  # verifying changes no state
    assert not (tmp_path / "s.json").exists()
    # hapo remembers prompts across steps: without a stable dataset index it must refuse, not key by row
    for extra in (None, {"index": "abc"}, {"index": -1}, {"index": vs.max_prompt_key(load_spec(spec_path)) + 1}):
        with pytest.raises(ValueError, match=r"extra_info\['index'\]"):
            rk_verl.compute_score("toy", "####3", "3", extra)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"advantage": None}, "no advantage estimator"),
        ({"length_unit": "words"}, "length_unit"),
        ({"shaping": [{"name": "repetition"}]}, r"\['repetition'\] read the completion"),
        ({"shaping": [{"name": "laser_de", "lower": 4, "upper": 24, "interval": 4}]}, r"\['laser_de'\] read"),
        ({"shaping": [{"name": "l1_exact", "target": 10}]}, r"\['l1_exact'\] read"),
        ({"verifier": {"name": "per_turn", "inner": "exact"}}, r"verifiers \['default'\] give per-unit rewards"),
    ],
)
def test_advantage_step_refuses_what_it_cannot_run(change, message, tmp_path):
    spec = {**spec_for(SHAPERS["kimi"], tmp_path / "s.json"), **change}
    with pytest.raises(ValueError, match=message):
        rk_verl.make_compute_score({k: v for k, v in spec.items() if v is not None}, advantage_step=True)


def test_partial_scores_off_the_grid_are_refused_not_rounded(tmp_path):
    spec = {**spec_for(SHAPERS["kimi"], tmp_path / "s.json"), "format": {"name": "reasoning_steps", "mode": "add"}}
    fn = rk_verl.make_compute_score(spec, advantage_step=True)
    assert fn("toy", "Step 1: a\nStep 2: b\nStep 3: c\n####3", "3")["format"] == 1.0
    with pytest.raises(ValueError, match="format score 0.333.*cannot travel"):
        fn("toy", "Step 1: a\n####3", "3")  # 1/3 of the way to full credit


def test_codes_and_plain_rewards_never_mix(tmp_path, fresh_estimator):
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    rk_verl.register_advantages()
    spec_path = write(tmp_path / "spec.yaml", {**spec_for(SHAPERS["kimi"], tmp_path / "s.json"), "state": None})
    fn = rk_verl.make_compute_score(spec_path, advantage_step=True)
    codes = torch.zeros(2, 4)
    codes[:, 1] = torch.tensor([fn("toy", "####3", "3")["score"], fn("toy", "####4", "3")["score"]])
    mask, uid = torch.ones(2, 4), np.array(["a", "a"], dtype=object)
    with pytest.raises(ValueError, match="verification codes.*rewardsmith_spec"):
        get_adv_estimator_fn("rewardsmith_grpo")(token_level_rewards=codes, response_mask=mask, index=uid)
    estimator = fresh_estimator()
    config = {"rewardsmith_spec": str(spec_path)}
    plain = torch.zeros(2, 4)
    plain[:, 1] = torch.tensor([1.0, 0.0])  # another reward function's 0/1 rewards
    with pytest.raises(ValueError, match="not a rewardsmith verification code"):
        estimator(token_level_rewards=plain, response_mask=mask, index=uid, config=config)
    with pytest.raises(ValueError, match="use_kl_in_reward"):
        estimator(token_level_rewards=codes, response_mask=mask, index=uid, config={**config, "use_kl_in_reward": True})
    with pytest.raises(ValueError, match="uid"):
        estimator(token_level_rewards=codes, response_mask=mask, index=None, config=config)


def test_a_batch_of_padding_only_gets_zero_advantages(tmp_path):
    estimator = vs.SpecAdvantage(spec_for(SHAPERS["hapo"], tmp_path / "s.json"))
    adv, returns = estimator(
        token_level_rewards=torch.zeros(2, 3), response_mask=torch.zeros(2, 3), index=np.array(["a", "a"], dtype=object)
    )
    assert (adv == 0).all() and (returns == 0).all()
    assert state_of(tmp_path / "s.json") == (1, {"hapo": {"history": {}}})
