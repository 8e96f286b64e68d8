"""verl's multi-turn agent loop, reward side: verl's own ``AgentLoopWorker._compute_score`` builds the batch it
sends, a real ``RewardLoopWorker`` (naive manager, rewardsmith's ``compute_score``) scores it — no rollout server."""

import asyncio
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.agent_loop.agent_loop import (  # noqa: E402
    AgentLoopMetrics,
    AgentLoopOutput,
    AgentLoopWorker,
    _agent_loop_registry,
)
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker  # noqa: E402

from rewardsmith.integrations import verl as rk_verl  # noqa: E402
from rewardsmith.integrations.verl_agent import (  # noqa: E402
    AGENT_NAME,
    RewardsmithToolAgentLoop,
    annotate_turn_tokens,
    turn_token_counts,
)
from rewardsmith.lab.model import build_tokenizer  # noqa: E402

EXACT = {"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "tokens"}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def verl_config(tmp_path, tok, spec):
    tok.save_pretrained(tmp_path / "tok")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": str(tmp_path / "tok"), "tokenizer_path": None}},
            "reward": {
                "reward_model": {"enable": False},
                "reward_manager": {"source": "register", "name": "naive"},
                "custom_reward_function": {
                    "path": "pkg://rewardsmith.integrations.verl",
                    "name": "compute_score",
                    "reward_kwargs": {},
                },
            },
        }
    )


def agent_output(tok, turns, messages=None, **extra):
    """An ``AgentLoopOutput`` as the tool agent loop returns it: ``turns`` alternate assistant / tool text,
    response_mask 1 on the assistant's tokens; ``extra_fields`` as verl fills them (+ the conversation)."""
    ids, mask = [], []
    for k, text in enumerate(turns):
        part = tok(text, add_special_tokens=False)["input_ids"]
        ids += part
        mask += [1 - k % 2] * len(part)
    fields = {"turn_scores": [], "tool_rewards": [], **extra}
    if messages is not None:
        fields["messages"] = messages
    return AgentLoopOutput(
        prompt_ids=tok("3+5=", add_special_tokens=False)["input_ids"],
        response_ids=ids,
        response_mask=mask,
        num_turns=len(turns) + 1,
        metrics=AgentLoopMetrics(),
        extra_fields=fields,
    )


def score_through_verl(monkeypatch, tmp_path, tok, output, spec=EXACT, answer="8"):
    """verl's reward path for one finished trajectory: ``AgentLoopWorker._compute_score`` → reward worker."""
    monkeypatch.setenv(rk_verl.SPEC_ENV, str(tmp_path / "spec.json"))
    config = verl_config(tmp_path, tok, spec)
    worker = object.__new__(AgentLoopWorker)  # _compute_score reads only these of the worker's state
    worker.processor, worker.mm_processor_kwargs = None, None

    async def run():
        reward_worker = RewardLoopWorker(config)  # in the loop: its manager binds the running event loop

        class Handle:  # a Ray actor handle's calling convention (``.compute_score.remote``), without a cluster
            class compute_score:
                remote = staticmethod(reward_worker.compute_score)

        worker.reward_loop_worker_handles = [Handle]
        kwargs = {"data_source": "toy", "reward_model": {"ground_truth": answer}, "extra_info": {"index": 3}}
        await worker._compute_score([output], kwargs)

    rk_verl._pipeline_for.cache_clear()
    asyncio.run(run())
    return output.reward_score, output.extra_fields["reward_extra_info"]


def conversation(final, tool="8"):
    return [
        {"role": "user", "content": "3+5="},
        {
            "role": "assistant",
            "content": "<think>3+5=",
            "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": "{}"}, "id": "c0"}],
        },
        {"role": "tool", "content": tool, "tool_call_id": "c0"},
        {"role": "assistant", "content": final},
    ]


def test_trajectory_is_scored_on_the_last_assistant_turn(monkeypatch, tmp_path, tok):
    msgs = conversation(";</think>####8")
    out = agent_output(tok, ["<think>3+5=", "8", ";</think>####8"], msgs)
    reward, info = score_through_verl(monkeypatch, tmp_path, tok, out)
    assert reward == 1.0 and info["acc"] == 1.0


def test_an_answer_in_a_tool_result_is_not_the_policys(monkeypatch, tmp_path, tok):
    """The decoded response holds the tool's text too: scored as one string, a tool that echoes ``####8``
    would pay the policy; the trajectory reads the policy's last turn only."""
    turns = ["<think>3+5=", "</think>####8", ""]  # the policy stops after the tool's turn
    reward, _ = score_through_verl(monkeypatch, tmp_path, tok, agent_output(tok, turns))
    assert reward == 1.0  # verl's plain tool agent: solution_str includes the tool's "####8"
    reward, info = score_through_verl(
        monkeypatch, tmp_path, tok, agent_output(tok, turns, conversation("", tool="</think>####8"))
    )
    assert reward == 0.0 and info["acc"] == 0.0


def test_turn_level_values_and_a_bad_conversation(tok):
    extra = {"index": 3, "messages": conversation(";</think>####8"), "tool_rewards": [0.5], "turn_scores": [1.0]}
    (rec,) = rk_verl._records(["toy"], ["ignored"], ["8"], [extra])
    assert "completion" not in rec and len(rec["messages"]) == 4
    assert (
        rec["meta"]["tool_rewards"] == [0.5] and rec["meta"]["turn_scores"] == [1.0] and "messages" not in rec["meta"]
    )
    # a tool result answering no call: scored as the decoded response, the reason kept in meta
    bad = {"index": 3, "messages": [{"role": "tool", "content": "8"}, {"role": "assistant", "content": "x"}]}
    (rec,) = rk_verl._records(["toy"], ["####8"], ["8"], [bad])
    assert rec["completion"] == "####8" and "no earlier tool call" in rec["meta"]["trajectory_error"]
    # multimodal content lists keep their text
    mm = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "3+5="}]}, {"role": "assistant"}]
    assert rk_verl.agent_messages(mm)[0]["content"] == "3+5=" and rk_verl.agent_messages(mm)[1]["content"] == ""


def test_turn_token_counts_from_the_response_mask():
    assert turn_token_counts([1, 1, 0, 0, 1, 0, 1, 1, 1]) == [2, 1, 3]
    assert turn_token_counts([]) == [] and turn_token_counts([0, 0]) == []
    msgs = [{"role": "assistant", "content": "few-shot"}, *conversation("####8")[0:]]
    annotate_turn_tokens(msgs, [1, 1, 1, 0, 1], prompt_messages=2)  # the prompt's own assistant turn is skipped
    assert "num_tokens" not in msgs[0] and msgs[2]["num_tokens"] == 3 and msgs[4]["num_tokens"] == 1
    cut = conversation("####8")
    annotate_turn_tokens(cut, [1, 1, 0], prompt_messages=1)  # the last turn fell past response_length
    assert all("num_tokens" not in m for m in cut)


def test_agent_loop_is_registered_for_verl():
    assert _agent_loop_registry[AGENT_NAME]["_target_"] == (
        f"{RewardsmithToolAgentLoop.__module__}.{RewardsmithToolAgentLoop.__qualname__}"
    )
