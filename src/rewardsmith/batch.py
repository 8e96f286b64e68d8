"""Columnar, group-aware view of a list of rollout records.

Rollouts that share a ``prompt_id`` form a group; ``Batch.group`` maps each row to its group's
index (groups numbered in order of first appearance) so shapers and advantage estimators can
work with ``np.bincount``-style reductions instead of Python loops.

Trajectories (records with ``messages``) are kept as flat per-message columns with row offsets
(:class:`Trajectories`): ``batch.trajectories.rows(i)`` is the slice of row i's messages, each with
its role, its index in the trajectory, its turn number among the row's assistant turns, its token
count and its tool calls. A single-turn record has no messages there; its completion is its one turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import (
    ROLES,
    RecordError,
    assistant_turns,
    completion_text,
    derived_fields,
    message_text,
    prompt_text,
    validate_record,
)

LENGTH_UNITS = ("tokens", "words", "chars")
_WORD = re.compile(r"\S+")


ASSISTANT, TOOL = ROLES.index("assistant"), ROLES.index("tool")


@dataclass
class Trajectories:
    """The batch's messages as flat columns; row i owns messages ``offsets[i]:offsets[i + 1]``.

    ``role`` indexes :data:`rewardsmith.records.ROLES` (the message's owner); ``position`` is the
    message's index in its trajectory; ``turn`` numbers the row's assistant messages 0, 1, ... (−1 for
    the other roles); ``num_tokens`` is the message's own count (NaN unknown); ``tool_calls`` its
    calls, each ``{"name", "arguments"}`` with the arguments as given (an object or JSON text).
    """

    offsets: np.ndarray  # int64, n_rows + 1
    role: np.ndarray  # int8
    position: np.ndarray  # int64
    turn: np.ndarray  # int64, -1 for non-assistant messages
    num_tokens: np.ndarray  # float64, NaN unknown
    text: list[str]
    tool_calls: list[list[dict[str, Any]]]
    logprobs: list[list[float] | None]
    tool_call_ids: list[str | None]  # a tool result's ``tool_call_id``

    @classmethod
    def from_messages(cls, rows: Sequence[list[dict[str, Any]] | None]) -> Trajectories:
        msgs = [m for row in rows for m in (row or [])]
        sizes = [len(row or []) for row in rows]
        role = np.array([ROLES.index(m["role"]) for m in msgs], dtype=np.int8)
        row_of = np.repeat(np.arange(len(rows)), sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        position = np.arange(len(msgs), dtype=np.int64) - offsets[row_of]
        is_turn = role == ASSISTANT
        before = np.cumsum(is_turn) - is_turn  # assistant messages before each message, batch-wide
        turn = np.where(is_turn, before - before[offsets[row_of]], -1).astype(np.int64)
        return cls(
            offsets=offsets,
            role=role,
            position=position,
            turn=turn,
            num_tokens=np.array([np.nan if m.get("num_tokens") is None else float(m["num_tokens"]) for m in msgs]),
            text=[message_text(m) for m in msgs],
            tool_calls=[[_call(c) for c in m.get("tool_calls") or []] for m in msgs],
            logprobs=[m.get("logprobs") for m in msgs],
            tool_call_ids=[m.get("tool_call_id") for m in msgs],
        )

    @property
    def n_tool_calls(self) -> np.ndarray:
        """Tool calls made by each message (int64)."""
        return np.array([len(c) for c in self.tool_calls], dtype=np.int64)

    def rows(self, i: int) -> slice:
        """The flat indices of row ``i``'s messages."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def has_messages(self, i: int) -> bool:
        return self.offsets[i + 1] > self.offsets[i]

    def assistant(self, i: int) -> np.ndarray:
        """Flat indices of row ``i``'s assistant messages (its turns), in order."""
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return lo + np.flatnonzero(self.role[lo:hi] == ASSISTANT)

    def turn_lengths(self, unit: str, tokenizer: Callable[[str], Sequence[int]] | None = None) -> np.ndarray:
        """Length of every message in ``unit`` (tokens: its ``num_tokens``, else its log-probs' count, else
        ``tokenizer``; NaN where none gives it; words and chars counted over its content)."""
        if unit == "chars":
            return np.array([len(t) for t in self.text], dtype=np.float64)
        if unit == "words":
            return np.array([len(_WORD.findall(t)) for t in self.text], dtype=np.float64)
        out = self.num_tokens.copy()
        for k in np.flatnonzero(np.isnan(out)):
            if self.logprobs[k] is not None:
                out[k] = len(self.logprobs[k])  # type: ignore[arg-type]
            elif tokenizer is not None:
                out[k] = len(tokenizer(self.text[k]))
        return out

    def history(self, i: int, upto: int) -> list[dict[str, Any]]:
        """Row ``i``'s messages before its assistant turn ``upto`` (all of them when ``upto`` is past the
        last turn), as ``{"role", "content"}`` (tool calls rendered as JSON after the content)."""
        out = []
        for k in range(*self.rows(i).indices(len(self.text))):
            if self.turn[k] >= upto:
                break
            content = self.text[k]
            if self.tool_calls[k]:
                content += "".join("\n" + json.dumps(c, ensure_ascii=False) for c in self.tool_calls[k])
            out.append({"role": ROLES[self.role[k]], "content": content})
        return out


def _call(call: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "arguments"}`` of one call (OpenAI's ``function`` wrapper unwrapped; ``parameters`` accepted)."""
    fn = call["function"] if isinstance(call.get("function"), dict) else call
    return {"name": fn["name"], "arguments": fn.get("arguments", fn.get("parameters", {}))}


@dataclass
class Batch:
    """Rollout records as columns. Build it with :meth:`from_records`."""

    prompt_ids: list[str]
    prompts: list[str]
    completions: list[str]
    answers: list[str | None]
    num_tokens: np.ndarray  # float64, NaN where unknown
    truncated: np.ndarray  # bool
    data_sources: list[str | None]
    steps: np.ndarray  # int64, -1 where unknown
    metas: list[dict[str, Any]]
    token_ids: list[Sequence[int] | None] = field(default_factory=list)
    turns: list[list[str] | None] = field(default_factory=list)  # assistant messages (conversational / trajectory)
    trajectories: Trajectories | None = None  # the records' messages, flat (None: no record has messages)
    group: np.ndarray = field(init=False)  # int64 group index per row
    group_keys: list[str] = field(init=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        self.group = np.fromiter(
            (index.setdefault(p, len(index)) for p in self.prompt_ids), dtype=np.int64, count=len(self.prompt_ids)
        )
        self.group_keys = list(index)
        if not self.token_ids:
            self.token_ids = [None] * len(self.prompt_ids)
        if not self.turns:
            self.turns = [None] * len(self.prompt_ids)
        if self.trajectories is None:
            self.trajectories = Trajectories.from_messages([None] * len(self.prompt_ids))

    def __len__(self) -> int:
        return len(self.prompt_ids)

    @property
    def n_groups(self) -> int:
        return len(self.group_keys)

    @property
    def group_sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=self.n_groups)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], validate: bool = True) -> Batch:
        recs = list(records)
        if validate:
            for i, rec in enumerate(recs):
                try:
                    validate_record(rec)
                except RecordError as exc:
                    raise RecordError(f"record {i}: {exc}") from None
        meta = [r.get("meta") or {} for r in recs]
        messages = [r.get("messages") for r in recs]
        derived = [derived_fields(m) if m is not None else ("", "") for m in messages]
        return cls(
            prompt_ids=[str(r["prompt_id"]) for r in recs],
            prompts=[
                prompt_text(r.get("prompt")) if r.get("prompt") is not None or m is None else d[0]
                for r, m, d in zip(recs, messages, derived)
            ],
            completions=[
                completion_text(r["completion"]) if r.get("completion") is not None else d[1]
                for r, d in zip(recs, derived)
            ],
            answers=[answer_text(r.get("answer")) for r in recs],
            num_tokens=np.array(
                [np.nan if r.get("num_tokens") is None else float(r["num_tokens"]) for r in recs], dtype=np.float64
            ),
            truncated=np.array([bool(r.get("truncated") or False) for r in recs], dtype=bool),
            data_sources=[r.get("data_source") for r in recs],
            steps=np.array([-1 if r.get("step") is None else int(r["step"]) for r in recs], dtype=np.int64),
            metas=meta,
            token_ids=[m.get("token_ids") for m in meta],
            turns=[
                [message_text(x) for x in m if x["role"] == "assistant"]
                if m is not None
                else assistant_turns(r["completion"])
                for r, m in zip(recs, messages)
            ],
            trajectories=Trajectories.from_messages(messages),
        )

    @property
    def is_trajectory(self) -> np.ndarray:
        """Bool per row: the record carries ``messages``."""
        return np.diff(self.trajectories.offsets) > 0  # type: ignore[union-attr]

    def assistant_lengths(self, unit: str, tokenizer: Callable[[str], Sequence[int]] | None = None) -> np.ndarray:
        """Per row, the summed length of a trajectory's assistant turns in ``unit`` (NaN for a row without
        messages, and in tokens for a trajectory with a turn whose count is unknown)."""
        t = self.trajectories
        assert t is not None
        per_turn = np.where(t.role == ASSISTANT, t.turn_lengths(unit, tokenizer), 0.0)
        row_of = np.repeat(np.arange(len(self)), np.diff(t.offsets))
        out = np.bincount(row_of, weights=per_turn, minlength=len(self)) if len(row_of) else np.zeros(len(self))
        return np.where(self.is_trajectory, out, np.nan)

    def lengths(
        self, unit: str = "tokens", tokenizer: Callable[[str], Sequence[int]] | None = None
    ) -> tuple[np.ndarray, str]:
        """Length of each completion and the unit actually used.

        ``tokens``: ``num_tokens`` where given, else token ids (``meta.token_ids`` / TRL's
        ``completion_ids``), else ``tokenizer(text)``. A trajectory counts its assistant turns only
        (each turn's ``num_tokens``, else its ``logprobs``' count, else ``tokenizer``; words and chars
        over the assistant contents), never the prompt, user or tool messages. If no record has a token count and no
        tokenizer is given, falls back to ``words`` and says so in the returned unit; a batch
        where only *some* records have token counts is an error (units are never mixed).
        """
        if unit not in LENGTH_UNITS:
            raise ValueError(f"length_unit: {unit!r} is not allowed; allowed: {', '.join(LENGTH_UNITS)}")
        traj = self.assistant_lengths(unit, tokenizer)
        if unit == "chars":
            out = np.array([len(c) for c in self.completions], dtype=np.float64)
            return np.where(np.isnan(traj), out, traj), "chars"
        if unit == "words":
            out = np.array([len(_WORD.findall(c)) for c in self.completions], dtype=np.float64)
            return np.where(np.isnan(traj), out, traj), "words"
        out = self.num_tokens.copy()
        missing = np.isnan(out)
        out[missing] = traj[missing]
        for i in np.flatnonzero(np.isnan(out) & ~self.is_trajectory):
            ids = self.token_ids[i]
            if ids is not None:
                out[i] = len(ids)
            elif tokenizer is not None:
                out[i] = len(tokenizer(self.completions[i]))
        still = np.isnan(out)
        if still.all() and len(out):
            return self.lengths("words")
        if still.any():
            first = int(np.flatnonzero(still)[0])
            raise RecordError(
                f"length_unit is 'tokens' but {int(still.sum())} of {len(out)} records have no num_tokens "
                f"(first: record {first}, prompt_id {self.prompt_ids[first]!r}); give num_tokens for all, "
                "a tokenizer, or length_unit: words|chars"
            )
        return out, "tokens"


def answer_text(value: Any) -> str | None:
    """A reference as text: strings as they are, structured answers (tool calls, boxes) as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def group_reduce(
    values: np.ndarray, group: np.ndarray, n_groups: int, how: str, where: np.ndarray | None = None
) -> np.ndarray:
    """Per-group ``sum|count|mean|min|max`` of ``values`` (optionally only rows where ``where``).

    Empty groups get NaN for mean/min/max and 0 for sum/count.
    """
    v = np.asarray(values, dtype=np.float64)
    mask = np.ones(len(v), dtype=bool) if where is None else np.asarray(where, dtype=bool)
    g = group[mask]
    v = v[mask]
    if how == "sum":
        return np.bincount(g, weights=v, minlength=n_groups)
    if how == "count":
        return np.bincount(g, minlength=n_groups).astype(np.float64)
    if how == "mean":
        cnt = np.bincount(g, minlength=n_groups)
        s = np.bincount(g, weights=v, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    if how in ("min", "max"):
        out = np.full(n_groups, np.inf if how == "min" else -np.inf)
        (np.minimum if how == "min" else np.maximum).at(out, g, v)
        out[np.isinf(out)] = np.nan
        return out
    raise ValueError(f"unknown reduction {how!r}")
