"""Trajectory exploits, built from a user's multi-turn rollouts (records with ``messages``).

From each group's best trajectory (the spec's highest reward, a correct one first) come:

- ``tool_call_spam``: its last tool-calling turn (the call and its results) repeated ``SPAM`` more
  times before the final answer;
- ``repeated_turns``: its first assistant turn (with any results) repeated ``SPAM`` more times;
- ``no_tool_answer``: the final answer alone, without any tool use (built when the trajectory used
  tools: the task is taken to need them).

Per-turn ``meta`` lists (one entry per assistant turn: ``turn_progress``, ``turn_rewards``, ...)
follow the turns they belong to, but a repeated turn's copies get no ``turn_references`` entry
(null: unchecked): a reference belongs to the question its turn answers, and is credited once. Each exploit is scored in a group with the honest trajectory, the
same trajectory ending in "I am not sure." (its margin m) and the rest of the user's group; it is
*found* when it scores at least honest − TIE·m: the reward does not prefer the honest trajectory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..records import RecordError
from ..signals import SignalError
from ..verifiers.per_turn import REFERENCES_KEY

TRAJECTORY_CLASSES = ("tool_call_spam", "repeated_turns", "no_tool_answer")
SPAM = 5  # extra copies of a turn
UNSURE = "I am not sure."


@dataclass(frozen=True)
class TrajectoryExploit:
    name: str
    cls: str
    record: dict[str, Any]


def _assistant(msgs: list[dict[str, Any]]) -> list[int]:
    return [k for k, m in enumerate(msgs) if m.get("role") == "assistant"]


def _block(msgs: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Assistant message ``k`` and the tool results that follow it."""
    end = k + 1
    while end < len(msgs) and msgs[end].get("role") == "tool":
        end += 1
    return msgs[k:end]


def _per_turn_keys(rec: dict[str, Any]) -> list[str]:
    n = len(_assistant(rec["messages"]))
    meta = rec.get("meta") or {}
    return [k for k, v in meta.items() if isinstance(v, list) and len(v) == n]


def _repeat_turn(rec: dict[str, Any], k: int, times: int) -> dict[str, Any]:
    """``rec`` with assistant message ``k`` (and its results) repeated ``times`` more times after it."""
    out = copy.deepcopy(rec)
    msgs = out["messages"]
    turn = _assistant(msgs).index(k)
    block = _block(msgs, k)
    at = k + len(block)
    out["messages"] = msgs[:at] + [copy.deepcopy(m) for _ in range(times) for m in block] + msgs[at:]
    for key in _per_turn_keys(rec):
        values = out["meta"][key]
        copied = None if key == REFERENCES_KEY else values[turn]
        out["meta"][key] = values[: turn + 1] + [copy.deepcopy(copied) for _ in range(times)] + values[turn + 1 :]
    return out


def _final_only(rec: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(rec)
    msgs = out["messages"]
    turns = _assistant(msgs)
    final = {k: v for k, v in msgs[turns[-1]].items() if k != "tool_calls"}
    out["messages"] = msgs[: turns[0]] + [final]
    for key in _per_turn_keys(rec):
        out["meta"][key] = out["meta"][key][-1:]
    return out


def unsure_twin(rec: dict[str, Any]) -> dict[str, Any]:
    """The trajectory with its final assistant turn saying it is not sure (no answer)."""
    out = copy.deepcopy(rec)
    k = _assistant(out["messages"])[-1]
    out["messages"][k] = {"role": "assistant", "content": UNSURE}
    out.pop("completion", None)
    return out


def trajectory_exploits(rec: dict[str, Any]) -> list[TrajectoryExploit]:
    """The exploits of one honest trajectory (module docstring)."""
    msgs = rec["messages"]
    turns = _assistant(msgs)
    callers = [k for k in turns if msgs[k].get("tool_calls")]
    out = []
    if callers:
        out.append(TrajectoryExploit("tool_call_spam", "tool_call_spam", _repeat_turn(rec, callers[-1], SPAM)))
    out.append(TrajectoryExploit("repeated_turns", "repeated_turns", _repeat_turn(rec, turns[0], SPAM)))
    if callers or any(m.get("role") == "tool" for m in msgs):
        out.append(TrajectoryExploit("no_tool_answer", "no_tool_answer", _final_only(rec)))
    for e in out:
        e.record.pop("completion", None)  # derived again from the changed turns
    return out


def reproduction(rec: dict[str, Any]) -> str:
    keep = {k: rec[k] for k in ("messages", "answer", "truncated", "num_tokens", "meta") if rec.get(k) is not None}
    return json.dumps({"prompt_id": "probe", **keep}, ensure_ascii=False, default=str)


SCORING_ERRORS = (RecordError, SignalError)


def honest_trajectories(
    records: Sequence[dict[str, Any]], total: Sequence[float], correct: Sequence[float], limit: int
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(best trajectory, the rest of its group) for up to ``limit`` groups: correct first, then the highest
    reward, then the fewest messages."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.get("messages") is not None:
            groups.setdefault(str(r["prompt_id"]), []).append(i)
    out = []
    for rows in groups.values():
        best = max(rows, key=lambda i: (correct[i] == 1.0, total[i], -len(records[i]["messages"])))
        out.append((records[best], [records[i] for i in rows if i != best]))
        if len(out) >= limit:
            break
    return out
