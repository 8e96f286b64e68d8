"""``reward_model``: a tiny locally built sequence classifier whose scores are hand-computable
(r = the score of the text's last word, see tests/rm_fixture.py), locally and through
``rewardsmith serve`` as a remote OpenRLHF-style reward server."""

from __future__ import annotations

import math
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("httpx")

sys.path.insert(0, str(Path(__file__).parent))
from rewardsmith import load_spec  # noqa: E402
from rewardsmith.registry import SpecError  # noqa: E402
from rewardsmith.verifiers.reward_model import RewardModel, combine  # noqa: E402
from rm_fixture import build_rm  # noqa: E402


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory) -> Path:
    return build_rm(tmp_path_factory.mktemp("rm"))


@pytest.fixture(scope="module")
def rm2_dir(tmp_path_factory) -> Path:
    return build_rm(tmp_path_factory.mktemp("rm2"), {"good": 0.2, "bad": 0.1, "ok": -0.3})


def local(rm_dir: Path, **kw) -> dict:
    return {"name": "reward_model", "path": str(rm_dir), "tokenizer": str(rm_dir / "tokenizer"), **kw}


PAIRS = [("q so", " good"), ("q", " bad"), ("q", " ok great"), ("q", " awful"), ("q so", " good")]
HAND = [0.8, -0.5, 0.6, -0.9, 0.8]


def test_local_scores_are_the_hand_computed_ones_batched_or_not(rm_dir):
    one = RewardModel(**{k: v for k, v in local(rm_dir, batch_size=1).items() if k != "name"})
    many = RewardModel(**{k: v for k, v in local(rm_dir, batch_size=4).items() if k != "name"})
    np.testing.assert_allclose(one.score_pairs(PAIRS), HAND, atol=1e-5)
    np.testing.assert_allclose(many.score_pairs(PAIRS), one.score_pairs(PAIRS), atol=1e-6)


def test_truncation_side_decides_what_is_scored(rm_dir):
    left = RewardModel(path=str(rm_dir), tokenizer=str(rm_dir / "tokenizer"), max_length=2, truncation_side="left")
    right = RewardModel(path=str(rm_dir), tokenizer=str(rm_dir / "tokenizer"), max_length=2, truncation_side="right")
    assert left.score_pairs([("q so", " bad good")])[0] == pytest.approx(0.8, abs=1e-5)  # keeps "bad good"
    assert right.score_pairs([("q so", " bad good")])[0] == pytest.approx(0.3, abs=1e-5)  # keeps "q so"


def test_each_unique_pair_is_scored_once(rm_dir):
    v = RewardModel(path=str(rm_dir), tokenizer=str(rm_dir / "tokenizer"), batch_size=2)
    calls = []
    v.members()[0].model.register_forward_hook(lambda mod, args, out: calls.append(1))
    pipe = load_spec({"verifier": local(rm_dir, batch_size=2), "length_unit": "words"})
    pipe.verifiers["default"] = v  # the same instance, hook attached
    recs = [{"prompt_id": "p", "prompt": p, "completion": c} for p, c in PAIRS]
    first = [r["reward"] for r in pipe.score_records(recs)]
    assert first == pytest.approx(HAND, abs=1e-5)
    assert v.scored_pairs == 4 and len(calls) == 2  # 4 unique pairs in batches of 2
    v.score_pairs([("q", " bad"), ("q so", " good")])  # already cached
    assert v.scored_pairs == 4 and len(calls) == 2


def test_ensemble_arithmetic_by_hand():
    s = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, np.nan]])
    np.testing.assert_allclose(combine(s, "mean")[:2], [2.0, 0.0])
    np.testing.assert_allclose(combine(s, "min")[:2], [1.0, 0.0])
    np.testing.assert_allclose(combine(s, "mean_minus_std", k=0.5)[:2], [2.0 - 0.5 * 1.0, 0.0])
    assert all(np.isnan(combine(s, how)[2]) for how in ("mean", "min", "mean_minus_std"))  # a member failed


@pytest.mark.parametrize(
    "how,expected",
    [
        ("mean", [(0.8 + 0.2) / 2, (-0.5 + 0.1) / 2, (0.1 - 0.3) / 2]),
        ("min", [0.2, -0.5, -0.3]),
        ("mean_minus_std", [0.5 - 2 * 0.3, -0.2 - 2 * 0.3, -0.1 - 2 * 0.2]),
    ],
)
def test_ensemble_of_two_local_models(rm_dir, rm2_dir, how, expected):
    members = [
        {
            "path": str(d),
        }
        for d in (rm_dir, rm2_dir)
    ]
    spec = {
        "verifier": {
            "name": "reward_model",
            "models": members,
            "ensemble": how,
            "k": 2.0,
            "tokenizer": str(rm_dir / "tokenizer"),
        },
        "length_unit": "words",
    }
    recs = [{"prompt_id": "p", "prompt": "q", "completion": c} for c in (" good", " bad", " ok")]
    assert [r["reward"] for r in load_spec(spec).score_records(recs)] == pytest.approx(expected, abs=1e-5)


def test_par_on_real_rm_scores(rm_dir):
    """PAR (Fu et al. 2025, Eq. 3): mean_j sigmoid(r − r_ref_j), references scored by the same RM."""
    spec = {"verifier": local(rm_dir), "shaping": [{"name": "par"}], "length_unit": "words"}
    recs = [
        {"prompt_id": "p", "prompt": "q", "completion": " good", "meta": {"reference_responses": [" ok", " bad"]}},
        {"prompt_id": "p", "prompt": "q", "completion": " awful", "meta": {"reference_responses": [" ok", " bad"]}},
    ]
    out = load_spec(spec).score_records(recs)
    assert out[0]["reward"] == pytest.approx((sigmoid(0.8 - 0.1) + sigmoid(0.8 + 0.5)) / 2, abs=1e-5)
    assert out[1]["reward"] == pytest.approx((sigmoid(-0.9 - 0.1) + sigmoid(-0.9 + 0.5)) / 2, abs=1e-5)


@pytest.mark.parametrize("shaper", ["lsc", "centered", "meanstd", "clip", "minmax"])
def test_every_rm_shaper_applies(rm_dir, shaper):
    spec = {"verifier": local(rm_dir), "shaping": [{"name": shaper}], "length_unit": "words"}
    recs = [
        {"prompt_id": "p", "prompt": "q", "completion": c, "meta": {"reference_responses": [" ok"]}}
        for c in (" good", " bad")
    ]
    rewards = [r["reward"] for r in load_spec(spec).score_records(recs)]
    assert all(isinstance(x, float) for x in rewards) and rewards[0] > rewards[1]
    if shaper == "centered":
        assert rewards == pytest.approx([0.8 - 0.1, -0.5 - 0.1], abs=1e-5)


def test_bad_reference_list_is_an_error_row_not_a_crash(rm_dir):
    recs = [{"prompt_id": "p", "prompt": "q", "completion": " good", "meta": {"reference_responses": "ok"}}]
    out = load_spec({"verifier": local(rm_dir), "length_unit": "words"}).score_records(recs)
    assert out[0]["status"] == "error"


def test_options_need_a_source():
    with pytest.raises(SpecError):
        load_spec({"verifier": {"name": "reward_model"}})
    with pytest.raises(SpecError):
        load_spec({"verifier": {"name": "reward_model", "path": "x", "url": "http://127.0.0.1:1/get_reward"}})


def test_unreachable_remote_rm_is_unknown_never_zero():
    from test_server import free_port

    spec = {
        "verifier": {"name": "reward_model", "url": f"http://127.0.0.1:{free_port()}/get_reward", "timeout_s": 5},
        "shaping": [{"name": "par"}],
        "advantage": {"name": "grpo"},
        "length_unit": "words",
    }
    recs = [
        {"prompt_id": "p", "prompt": "q", "completion": c, "meta": {"reference_responses": [" ok"]}}
        for c in (" good", " bad")
    ]
    out = load_spec(spec).score_records(recs)
    assert [(r["reward"], r["correct"], r["status"]) for r in out] == [(None, None, "judge_failed")] * 2
    assert [r["advantage"] for r in out] == [0.0, 0.0]


@pytest.mark.slow
def test_remote_rm_served_by_rewardsmith_serve(rm_dir, tmp_path):
    """A spec whose reward is the local RM, served by ``rewardsmith serve``; a second spec scores through its
    /get_reward and matches local scoring; killing the server leaves unknown rewards and a finished run."""
    import json

    from test_server import start_serve

    served = tmp_path / "served.json"
    served.write_text(json.dumps({"verifier": local(rm_dir), "length_unit": "words"}))
    proc, url = start_serve(str(served))
    try:
        remote = load_spec(
            {
                "verifier": {"name": "reward_model", "url": f"{url}/get_reward"},
                "shaping": [{"name": "par"}],
                "length_unit": "words",
            }
        )
        localpipe = load_spec({"verifier": local(rm_dir), "shaping": [{"name": "par"}], "length_unit": "words"})
        recs = [
            {"prompt_id": "p", "prompt": "q so", "completion": c, "meta": {"reference_responses": [" ok"]}}
            for c in (" good", " bad", " ok great")
        ]
        got = [r["reward"] for r in remote.score_records(recs)]
        assert got == pytest.approx([r["reward"] for r in localpipe.score_records(recs)], abs=1e-6)
        assert got == pytest.approx([sigmoid(0.8 - 0.1), sigmoid(-0.5 - 0.1), sigmoid(0.6 - 0.1)], abs=1e-5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        more = [{"prompt_id": "p2", "prompt": "q", "completion": c} for c in (" awful", " good")]
        out = remote.score_records(recs[:1] + more)  # the first pair is cached; the new ones cannot be scored
        assert out[0]["reward"] == pytest.approx(got[0], abs=1e-6)
        assert [r["reward"] for r in out[1:]] == [None, None]
        assert [r["status"] for r in out[1:]] == ["judge_failed"] * 2
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_score_cli_and_trl_adapter_give_the_local_scores(rm_dir, tmp_path):
    import json

    from rewardsmith.cli import main
    from rewardsmith.integrations.trl import reward_funcs

    spec = {"verifier": local(rm_dir), "shaping": [{"name": "par"}], "length_unit": "words"}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    recs = [
        {"prompt_id": "p", "prompt": "q", "completion": c, "meta": {"reference_responses": [" ok"]}}
        for c in (" good", " bad")
    ]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert (
        main(
            [
                "score",
                str(tmp_path / "r.jsonl"),
                "--spec",
                str(tmp_path / "spec.json"),
                "-o",
                str(tmp_path / "out.jsonl"),
            ]
        )
        == 0
    )
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    hand = [sigmoid(0.8 - 0.1), sigmoid(-0.5 - 0.1)]
    assert [r["reward"] for r in out] == pytest.approx(hand, abs=1e-5)
    (fn,) = reward_funcs({"verifier": local(rm_dir), "length_unit": "words"})
    assert fn(prompts=["q", "q"], completions=[" good", " awful"]) == pytest.approx([0.8, -0.9], abs=1e-5)
    (dead,) = reward_funcs(
        {"verifier": {"name": "reward_model", "url": "http://127.0.0.1:9/get_reward"}, "length_unit": "words"}
    )
    assert dead(prompts=["q"], completions=[" good"]) == [None]  # unknown, never 0


def test_reply_parsing():
    from rewardsmith.verifiers.reward_model import parse_reply

    got = parse_reply({"rewards": [1.5, None, "x", True]}, "openrlhf")
    assert got[0] == 1.5 and np.isnan(got[1:]).all()  # null, text and booleans are no score
    pooled = {"data": [{"data": 0.5}, {"data": [0.7]}, {"data": [[0.1], [0.2], [0.9]]}, {"data": [0.1, 0.3, -0.4]}]}
    assert parse_reply(pooled, "vllm_pooling").tolist() == [0.5, 0.7, 0.9, -0.4]  # per-token output: the last token
    with pytest.raises(KeyError):
        parse_reply({"error": "overloaded"}, "openrlhf")  # the caller turns this into unknown scores


def test_a_served_unknown_reward_reaches_a_remote_rm_client_as_unknown():
    """rewardsmith → rewardsmith: a served reward_model whose own RM is down answers ``/get_reward``
    with ``null`` (never 0) and a ``judge_failed`` flag; a reward_model client of that server reads
    the null back as unknown (reward null, no advantage), not as a score of 0."""
    from rewardsmith.integrations.server import create_app
    from test_server import free_port, running

    dead = {"verifier": {"name": "reward_model", "url": f"http://127.0.0.1:{free_port()}/get_reward", "timeout_s": 5}}
    with running(create_app({**dead, "length_unit": "words"})) as url:
        import httpx

        reply = httpx.post(f"{url}/get_reward", json={"query": ["q good"], "prompts": ["q"]}, trust_env=False).json()
        assert reply["rewards"] == [None] and reply["extra_logs"]["judge_failed"] == [1.0]
        client = load_spec(
            {
                "verifier": {"name": "reward_model", "url": f"{url}/get_reward"},
                "advantage": {"name": "grpo"},
                "length_unit": "words",
            }
        )
        recs = [{"prompt_id": "p", "prompt": "q", "completion": c} for c in (" good", " bad")]
        out = client.score_records(recs)
    assert [(r["reward"], r["status"], r["advantage"]) for r in out] == [(None, "judge_failed", 0.0)] * 2
