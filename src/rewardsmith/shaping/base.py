"""The shaper interface: pure, vectorised, group-aware functions of the batch plus explicit state.

A shaper sees a :class:`ShapingContext` (current reward, base correctness reward, correctness,
lengths in the spec's unit, truncation, groups, the step and its own state dict) and returns the
new reward together with the value it measured (``Scores.values[name]``); the pipeline records how
much it moved the reward as its contribution (``Scores.components[name]``). Capability tags on the
class (``group_aware``, ``stateful``, ``step_scheduled``, ...) say what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..batch import Batch, group_reduce
from ..registry import Component
from ..signals import SignalError, Signals
from ..types import BaseValues


@dataclass
class Dense:
    """A component's per-unit rewards (``unit``: token, step, turn or segment) and, where the method
    defines them, per-unit advantages; one list per row. A row's rewards sum to the component's
    contribution; the pipeline adds the rest of the reward to each row's last unit."""

    unit: str
    rewards: list[list[float]]
    advantages: list[list[float]] | None = None
    verdicts: list[list[float | None]] | None = None  # a per-turn verifier's score per turn (None: unchecked/unknown)


@dataclass
class ShapingContext:
    batch: Batch
    reward: np.ndarray  # the reward so far (base, format, earlier shapers)
    base: np.ndarray  # the correctness reward alone
    correct: np.ndarray  # 1.0 / 0.0 / NaN (unknown)
    length: np.ndarray  # in ``unit``
    unit: str
    answered: np.ndarray  # bool: the verifier found an answer
    format_ok: np.ndarray  # bool: passed the format check (all True without one)
    step: int
    base_values: BaseValues = field(default_factory=BaseValues)
    state: dict[str, Any] = field(default_factory=dict)  # this component's own persistent state
    signals: Signals | None = None  # the batch's model signals (components with ``needs_signals``)
    dense: dict[str, Dense] = field(default_factory=dict)  # per-unit outputs, written by components with ``dense_unit``
    unknown: np.ndarray | None = None  # bool: the row's reward is unknown (a model failed); None: none is

    @property
    def truncated(self) -> np.ndarray:
        return self.batch.truncated

    @property
    def group(self) -> np.ndarray:
        return self.batch.group

    @property
    def n_groups(self) -> int:
        return self.batch.n_groups

    @property
    def is_correct(self) -> np.ndarray:
        """Bool mask: known correct (NaN counts as not correct)."""
        return self.correct == 1.0

    @property
    def is_wrong(self) -> np.ndarray:
        """Bool mask: known wrong (NaN counts as not wrong)."""
        return self.correct == 0.0

    def group_stat(self, values: np.ndarray, how: str, where: np.ndarray | None = None) -> np.ndarray:
        """Per-group reduction broadcast back to rows (see :func:`rewardsmith.batch.group_reduce`)."""
        return group_reduce(values, self.group, self.n_groups, how, where)[self.group]

    def require_signals(self) -> Signals:
        """The batch's signals (set by the pipeline for components with ``needs_signals``)."""
        if self.signals is None:
            raise SignalError("this component reads model signals: score it through a Pipeline (the signals stage)")
        return self.signals

    def with_state(self, state: dict[str, Any]) -> ShapingContext:
        return replace(self, state=state)


class Shaper(Component):
    """Base class of every shaper. Additive shapers implement :meth:`term`; shapers that
    replace the reward (cosine, truncation, L1-Max, ...) override :meth:`apply`. A shaper with
    per-token/step/turn values sets ``dense_unit`` and writes ``ctx.dense[self.name]``."""

    kind = "shaper"
    dense_unit: ClassVar[str | None] = None

    def check_state(self, state: dict[str, Any]) -> None:
        """Raise ValueError if ``state`` (this component's part of a loaded state file) is out of
        schema or range. Stateful shapers override it; the file is refused before any scoring."""

    def term(self, ctx: ShapingContext) -> np.ndarray:
        raise NotImplementedError

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(new_reward, component_value)``; the default adds :meth:`term`."""
        t = np.asarray(self.term(ctx), dtype=np.float64)
        return ctx.reward + t, t
