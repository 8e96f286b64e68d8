"""NeMo Gym's resources-server ``/verify`` protocol on ``rewardsmith serve``.

NeMo Gym (NVIDIA) runs an agent against a policy model through the OpenAI Responses API and then
posts the rollout to the environment's resources server: ``POST /verify`` with a
``BaseVerifyRequest`` — ``responses_create_params`` (what the agent sent: ``input`` as text or a
list of items, ``instructions``, ``tools``), ``response`` (the Responses-API object: ``output``
holds the assistant ``message`` items, ``function_call`` items and, for a multi-step agent, the
``function_call_output`` items between them) and the dataset row's own fields (a reference such
as ``expected_answer``). The answer is a ``BaseVerifyResponse``: the request echoed back with
``reward`` (float) added, plus ``mask_sample``/``failure_kind``/``failure_reason`` when the
reward is not a valid measurement (nemo_gym/base_resources_server.py, nemo-gym 0.7).

:func:`to_record` turns one request into a rewardsmith trajectory record: ``messages`` in chat
form (system/user/assistant/tool; a ``function_call`` becomes a ``tool_calls`` entry of the
assistant turn it follows, a ``function_call_output`` a ``tool`` turn; the batch derives the
completion, the last assistant turn, from them), ``answer`` from the first present field of
``answer_fields``, ``truncated`` when the response stopped at ``max_output_tokens``, per-turn
``num_tokens``/``logprobs`` from the token ids NeMo Gym's training models attach
(``generation_token_ids``, ``generation_log_probs``), and the row's other fields in ``meta``.
Rollouts of one task share ``prompt_id`` (``_ng_task_index`` when the row carries it, else a
hash of the prompt). :func:`to_response` answers with the pipeline's reward, ``mask_sample``
true when correctness is unknown (a verifier timeout or error, an unusable reference, a failed
judge), and rewardsmith's ``correct`` and ``components`` beside them.

NeMo Gym's reasoning items are not part of any turn's text (a format reading ``<think>`` sees the
assistant messages only); tool types other than functions (MCP, shell, web search) are refused
with 422 rather than silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..records import RecordError
from ..verifiers.base import BAD_REFERENCE, ERROR, JUDGE_FAILED, TIMEOUT

ANSWER_FIELDS = ("expected_answer", "ground_truth", "answer")
_PROTOCOL_FIELDS = {"responses_create_params", "response", "_ng_rollout_id", "_ng_task_index", "_ng_rollout_index"}
_FAILURE_KIND = {TIMEOUT: "verifier_error", ERROR: "verifier_error", BAD_REFERENCE: "verifier_error"}
_FAILURE_KIND[JUDGE_FAILED] = "judge_failed"


def _text(content: Any, where: str) -> str:
    """A Responses-API content value as text: a string, or the text of its parts in order."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RecordError(f"{where}: content must be text or a list of parts, got {type(content).__name__}")
    parts = []
    for part in content:
        if not isinstance(part, dict):
            raise RecordError(f"{where}: a content part must be an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(str(part.get("text", "")))
        elif kind == "refusal":
            parts.append(str(part.get("refusal", "")))
        else:
            raise RecordError(f"{where}: content part of type {kind!r} is not text")
    return "".join(parts)


def _training_tokens(item: dict[str, Any], turn: dict[str, Any]) -> None:
    """Per-turn token count and log-probs from NeMo Gym's ``*ForTraining`` output items."""
    ids, logprobs = item.get("generation_token_ids"), item.get("generation_log_probs")
    if isinstance(ids, list):
        turn["num_tokens"] = turn.get("num_tokens", 0) + len(ids)
    if isinstance(logprobs, list):
        turn["logprobs"] = turn.get("logprobs", []) + [float(v) for v in logprobs]


def to_messages(params: dict[str, Any], response: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat-form trajectory of a verify request: ``instructions`` and ``input``, then ``response.output``."""
    messages: list[dict[str, Any]] = []
    if params.get("instructions"):
        messages.append({"role": "system", "content": _text(params["instructions"], "instructions")})
    given = params.get("input", [])
    items = [{"type": "message", "role": "user", "content": given}] if isinstance(given, str) else given
    output = response.get("output", [])
    if not isinstance(items, list) or not isinstance(output, list):
        raise RecordError("'input' and 'output' must be lists of items")
    for where, item in [(f"input[{i}]", x) for i, x in enumerate(items)] + [
        (f"output[{i}]", x) for i, x in enumerate(output)
    ]:
        if not isinstance(item, dict):
            raise RecordError(f"{where}: an item must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise RecordError(f"{where}: unknown role {role!r}")
            turn = {"role": "system" if role == "developer" else role, "content": _text(item.get("content"), where)}
            messages.append(turn)
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id", "")),
                "type": "function",
                "function": {"name": str(item.get("name", "")), "arguments": str(item.get("arguments", ""))},
            }
            if not messages or messages[-1]["role"] != "assistant":  # calls after a message belong to its turn
                messages.append({"role": "assistant", "content": ""})
            turn = messages[-1]
            turn.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            out = item.get("output", "")
            content = out if isinstance(out, str) else _text(out, where)
            turn = {"role": "tool", "content": content, "tool_call_id": str(item.get("call_id", ""))}
            messages.append(turn)
        elif kind == "reasoning":
            continue
        else:
            raise RecordError(f"{where}: item type {kind!r} is not supported (function tools only)")
        if turn["role"] == "assistant":
            _training_tokens(item, turn)
    return messages


def to_record(body: dict[str, Any], answer_fields: tuple[str, ...] = ANSWER_FIELDS) -> dict[str, Any]:
    """A rewardsmith trajectory record from one ``/verify`` body (a dict of its JSON)."""
    params, response = body.get("responses_create_params"), body.get("response")
    if not isinstance(params, dict) or not isinstance(response, dict):
        raise RecordError("'responses_create_params' and 'response' must be objects")
    messages = to_messages(params, response)
    assistant = [m for m in messages if m["role"] == "assistant"]
    if not assistant:
        raise RecordError("the response holds no assistant turn")
    task = body.get("_ng_task_index")
    record: dict[str, Any] = {
        "prompt_id": str(task)
        if isinstance(task, int) and not isinstance(task, bool)
        else hashlib.sha1(json.dumps(messages[: messages.index(assistant[0])], sort_keys=True).encode()).hexdigest()[
            :16
        ],
        "messages": messages,
    }
    reason = (response.get("incomplete_details") or {}).get("reason")
    record["truncated"] = response.get("status") == "incomplete" and reason == "max_output_tokens"
    for name in answer_fields:
        if body.get(name) is not None:
            record["answer"] = body[name]
            break
    step = body.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        record["step"] = step
    meta = {k: v for k, v in body.items() if k not in _PROTOCOL_FIELDS and k not in answer_fields and k != "step"}
    if params.get("tools"):
        meta["tools"] = params["tools"]
    if meta:
        record["meta"] = meta
    return record


def to_response(body: dict[str, Any], scores: Any, index: int = 0) -> dict[str, Any]:
    """``BaseVerifyResponse``: the request echoed with ``reward``, masked when the reward measures nothing.

    rewardsmith's own fields (``correct``, ``components``, ``dense`` for turn-level components) ride along;
    NeMo Gym's model ignores fields it does not declare."""
    fields = scores.record_fields(index)
    status = scores.status[index]
    out = {k: v for k, v in body.items() if k != "_ng_rollout_id"}  # the request model excludes it on output
    out.update({k: v for k, v in fields.items() if k != "reward"})
    out["reward"] = 0.0 if fields["reward"] is None else fields["reward"]
    out["mask_sample"] = status in _FAILURE_KIND or fields["reward"] is None
    if out["mask_sample"]:
        out["failure_kind"] = _FAILURE_KIND.get(status, "verifier_error")
        out["failure_reason"] = f"rewardsmith: verifier status {status}"
    return out
