"""Scored rollouts as columns: what every analysis reads from ``rewardsmith score`` output.

A scored record is a rollout record (docs/architecture.md) plus ``reward``, ``correct`` (true/false/null)
and ``components`` {name: value}. Length is ``num_tokens`` where every record has it, else
words (``\\S+``), and the unit travels with the numbers; the two are never mixed.

    >>> run = ScoredRollouts.from_records([
    ...     {"prompt_id": "a", "completion": "x y", "num_tokens": 5, "reward": 1.0, "correct": True},
    ...     {"prompt_id": "a", "completion": "x", "num_tokens": 3, "reward": 0.0, "correct": None}])
    >>> run.length.tolist(), run.unit, run.correct.tolist()
    ([5.0, 3.0], 'tokens', [1.0, nan])
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..batch import Batch
from ..records import RecordError

BREAKDOWN_KEYS = ("difficulty", "data_source", "step")


class NotScoredError(RecordError):
    """The records lack the fields ``rewardsmith score`` adds."""


@dataclass
class ScoredRollouts:
    """Columns of a scored rollout file; build with :meth:`from_records`.

    ``correct`` is 1.0/0.0/NaN (unknown); ``reward`` is NaN where a record has none;
    ``components`` maps each component name to an array with NaN where a record lacks it.
    """

    batch: Batch
    reward: np.ndarray
    correct: np.ndarray
    length: np.ndarray
    unit: str
    components: dict[str, np.ndarray]
    records: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def group(self) -> np.ndarray:
        return self.batch.group

    @property
    def n_groups(self) -> int:
        return self.batch.n_groups

    @property
    def format_ok(self) -> np.ndarray | None:
        """1.0/0.0 per rollout from the ``format_ok`` that scoring writes (NaN where a record has
        none); None when no record has one (the spec had no format check)."""
        values = [r.get("format_ok") for r in self.records]
        if all(v is None for v in values):
            return None
        return np.array([np.nan if v is None else float(bool(v)) for v in values], dtype=np.float64)

    @property
    def truncated(self) -> np.ndarray:
        return self.batch.truncated

    @property
    def steps(self) -> np.ndarray:
        return self.batch.steps

    @property
    def has_reward(self) -> bool:
        return bool(len(self)) and not np.isnan(self.reward).all()

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], unit: str = "tokens") -> ScoredRollouts:
        """Columns from scored records. ``unit='tokens'`` falls back to words when no record has
        ``num_tokens`` (see :meth:`rewardsmith.batch.Batch.lengths`); ``words``/``chars`` force a unit."""
        recs = list(records)
        batch = Batch.from_records(recs)
        length, used = batch.lengths(unit)
        reward = np.array([_float(r.get("reward")) for r in recs], dtype=np.float64)
        correct = np.array([_correct(r.get("correct")) for r in recs], dtype=np.float64)
        names: list[str] = []
        for r in recs:
            for name in r.get("components") or {}:
                if name not in names:
                    names.append(name)
        components = {
            n: np.array([_float((r.get("components") or {}).get(n)) for r in recs], dtype=np.float64) for n in names
        }
        return cls(batch, reward, correct, length, used, components, recs)

    def require_scored(self, what: str) -> None:
        """Raise :class:`NotScoredError` unless at least one record carries ``reward`` or ``correct``."""
        if len(self) and np.isnan(self.reward).all() and np.isnan(self.correct).all():
            raise NotScoredError(
                f"{what}: the records have no 'reward' or 'correct'; score them first (rewardsmith score ROLLOUTS --spec SPEC)"
            )

    def breakdown(self, by: str) -> list[str]:
        """A label per rollout for grouping results: ``difficulty`` (``meta.difficulty``, else
        ``data_source``), ``data_source`` or ``step``; records without one get ``"unknown"``."""
        if by not in BREAKDOWN_KEYS:
            raise ValueError(f"breakdown: {by!r} is not allowed; allowed: {', '.join(BREAKDOWN_KEYS)}")
        if by == "step":
            return [str(s) if s >= 0 else "unknown" for s in self.steps]
        out = []
        for meta, source in zip(self.batch.metas, self.batch.data_sources):
            value = meta.get("difficulty") if by == "difficulty" else None
            if value is None:
                value = source
            out.append("unknown" if value is None else str(value))
        return out


def sorted_labels(labels: Iterable[str]) -> list[str]:
    """Distinct labels, numeric ones in numeric order first, then the rest alphabetically."""

    def key(label: str) -> tuple[int, float, str]:
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)

    return sorted(set(labels), key=key)


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RecordError(f"expected a number, got {value!r}") from None


def _correct(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, (bool, int, float)):
        return 1.0 if value >= 1.0 else 0.0
    raise RecordError(f"'correct' must be true, false or null, got {value!r}")
