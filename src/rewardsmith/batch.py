"""Columnar, group-aware view of a list of rollout records.

Rollouts that share a ``prompt_id`` form a group; ``Batch.group`` maps each row to its group's
index (groups numbered in order of first appearance) so shapers and advantage estimators can
work with ``np.bincount``-style reductions instead of Python loops.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import RecordError, assistant_turns, completion_text, prompt_text, validate_record

LENGTH_UNITS = ("tokens", "words", "chars")
_WORD = re.compile(r"\S+")


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
    turns: list[list[str] | None] = field(default_factory=list)  # assistant messages of conversational completions
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
        return cls(
            prompt_ids=[str(r["prompt_id"]) for r in recs],
            prompts=[prompt_text(r.get("prompt")) for r in recs],
            completions=[completion_text(r["completion"]) for r in recs],
            answers=[_answer_text(r.get("answer")) for r in recs],
            num_tokens=np.array(
                [np.nan if r.get("num_tokens") is None else float(r["num_tokens"]) for r in recs], dtype=np.float64
            ),
            truncated=np.array([bool(r.get("truncated") or False) for r in recs], dtype=bool),
            data_sources=[r.get("data_source") for r in recs],
            steps=np.array([-1 if r.get("step") is None else int(r["step"]) for r in recs], dtype=np.int64),
            metas=meta,
            token_ids=[m.get("token_ids") for m in meta],
            turns=[assistant_turns(r["completion"]) for r in recs],
        )

    def lengths(
        self, unit: str = "tokens", tokenizer: Callable[[str], Sequence[int]] | None = None
    ) -> tuple[np.ndarray, str]:
        """Length of each completion and the unit actually used.

        ``tokens``: ``num_tokens`` where given, else token ids (``meta.token_ids`` / TRL's
        ``completion_ids``), else ``tokenizer(text)``. If no record has a token count and no
        tokenizer is given, falls back to ``words`` and says so in the returned unit; a batch
        where only *some* records have token counts is an error (units are never mixed).
        """
        if unit not in LENGTH_UNITS:
            raise ValueError(f"length_unit: {unit!r} is not allowed; allowed: {', '.join(LENGTH_UNITS)}")
        if unit == "chars":
            return np.array([len(c) for c in self.completions], dtype=np.float64), "chars"
        if unit == "words":
            return np.array([len(_WORD.findall(c)) for c in self.completions], dtype=np.float64), "words"
        out = self.num_tokens.copy()
        missing = np.isnan(out)
        for i in np.flatnonzero(missing):
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


def _answer_text(value: Any) -> str | None:
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
