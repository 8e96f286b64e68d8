"""``per_turn``: any verifier run on each assistant turn of a trajectory against per-turn references.

A trajectory (a record with ``messages``, docs/multiturn.md) may answer several questions, one per
turn: ``meta.turn_references`` lists one reference per assistant turn, ``null`` for a turn that is
not checked. Each checked turn is a job of the ``inner`` verifier, made by that verifier's own
``job_for`` on a one-turn view of the record (the turn's text as the completion, the turn's reference
as the answer, the last user message before the turn as the prompt), so extraction is exactly the
final-answer path's; the jobs of all turns of all rows go to the engine in one call (each under the
hard timeout, identical jobs verified once, the inner verifier's cache). A record without
``messages`` or without ``meta.turn_references`` is checked as ``inner`` checks it: its last turn
against ``answer`` — single-turn records score as they do under ``inner``. Dense, verified turn-level
rewards are the setting "A Practitioner's Guide to Multi-turn Agentic RL" (Wang & Ammanabrolu 2025)
compares with a sparse outcome; ``turn_grpo`` turns them into per-turn advantages.

Per turn, the verdict gives a value in the spec's ``base`` units: ``wrong + s·(correct − wrong)``,
``no_answer`` when the turn has no answer, and ``wrong`` when its verdict is unknown (timeout, error,
unparseable reference: unknown, never credited, as on the final-answer path). Over the K checked
turns, ``aggregate`` makes the correctness reward and the per-turn (``dense``, ``unit: turn``) rewards:

- ``mean`` (default): R = Σ v_t / K; turn t's reward v_t / K;
- ``sum``: R = Σ v_t (one credit per reference); turn t's reward v_t;
- ``min``: R = min v_t, on the first turn that has it;
- ``last``: R = the last checked turn's value, on that turn.

Unchecked turns get 0. Each reference is checked against its one turn, so repeating a right answer in
other turns earns nothing more. The row's verdict (``correct``, ``values.correctness``) aggregates the
turn scores the same way (``sum``: their mean; a turn without an answer scores 0; with one checked
turn it is that turn's verdict as it is); it is unknown when
any checked turn's verdict is, and the row's status is then that turn's (``judge_failed`` first, then
``timeout``, ``error``, ``bad_reference``). The ``dense`` output's ``verdicts`` has each turn's score
(null: unchecked or unknown). A malformed ``turn_references`` (not a list, or not one entry per
assistant turn) is the row's ``error``.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": {"name": "per_turn", "inner": "exact", "aggregate": "sum"},
    ...                   "length_unit": "words"})
    >>> rec = {"prompt_id": "q", "meta": {"turn_references": ["4", None, "9"]},
    ...        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
    ...                     {"role": "user", "content": "thanks"}, {"role": "assistant", "content": "ok"},
    ...                     {"role": "user", "content": "3*3?"}, {"role": "assistant", "content": "8"}]}
    >>> s = pipe.score([rec])
    >>> s.total.tolist(), s.dense.rewards, s.dense.verdicts
    ([1.0], [[1.0, 0.0, 0.0]], [[1.0, None, 0.0]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from ..batch import Batch, answer_text
from ..records import ROLES
from ..registry import Options, SpecError, register
from ..types import BaseValues
from .base import BAD_REFERENCE, ERROR, JUDGE_FAILED, NO_ANSWER, OK, TIMEOUT, Job, Verdict, Verifier, extraction_failed

if TYPE_CHECKING:
    from ..engine import VerificationEngine

REFERENCES_KEY = "turn_references"  # meta key: one reference per assistant turn (null: not checked)
_UNKNOWN_ORDER = (JUDGE_FAILED, TIMEOUT, ERROR, BAD_REFERENCE)  # the row's status when a turn's verdict is unknown
_USER = ROLES.index("user")
_NOT_INNER = ("per_turn", "tool_call")  # tool_call scores a trajectory per call itself (its ``aggregate``)


@dataclass(frozen=True)
class TurnVerdict(Verdict):
    """A row's verdict made from its turns' verdicts (module docstring): ``reward`` is its correctness
    reward R in ``base`` units, ``dense`` the per-turn rewards, ``turns`` each turn's verdict (None:
    unchecked); ``meta_update`` the one checked turn's (a reward model's reference scores)."""

    reward: float = 0.0
    dense: tuple[float, ...] = ()
    turns: tuple[Verdict | None, ...] = ()
    meta_update: dict[str, Any] | None = None

    @property
    def turn_scores(self) -> list[float | None]:
        """Each turn's verdict score; None where unchecked or unknown."""
        return [None if v is None or math.isnan(v.score) else float(v.score) for v in self.turns]


class PerTurnOptions(Options):
    inner: str | dict[str, Any] = Field(description="the verifier run on each turn: a name or {name: ..., options}")
    aggregate: Literal["mean", "sum", "min", "last"] = Field(
        default="mean", description="how the checked turns' values make the reward (module docstring)"
    )


@register(
    "verifier",
    "per_turn",
    "any verifier run on each assistant turn against meta.turn_references; per-turn rewards (dense, unit turn)",
    "verified turn-level rewards: A Practitioner's Guide to Multi-turn Agentic RL (Wang & Ammanabrolu 2025)",
)
class PerTurnVerifier(Verifier):
    """Runs ``inner`` per turn (module docstring). The pipeline builds ``inner`` from the option and
    :meth:`bind` s it (components cannot build components); the engine only ever runs ``inner``."""

    Options = PerTurnOptions
    example_options = {"inner": "exact"}
    dense_unit = "turn"  # per-turn rewards in the ``dense`` output
    _inner: Verifier | None = None

    def bind(self, inner: Verifier) -> None:
        if inner.name in _NOT_INNER:
            hint = "; tool_call scores each call of a trajectory itself" if inner.name == "tool_call" else ""
            raise SpecError(f"verifier.inner: {inner.name} cannot run per turn{hint}")
        self._inner = inner

    @property
    def inner(self) -> Verifier:
        if self._inner is None:
            raise SpecError("per_turn: its inner verifier is not built; load the spec with load_spec")
        return self._inner

    @property
    def step_scheduled(self) -> bool:  # type: ignore[override]
        return bool(self.inner.step_scheduled)

    def extract(self, completion: str) -> str | None:
        return self.inner.extract(completion)

    def check(self, job: Job) -> Verdict:
        return self.inner.check(job)

    def verify_rows(
        self,
        batch: Batch,
        rows: Sequence[int],
        extra: dict[str, Any] | None,
        engine: VerificationEngine,
        base: BaseValues,
    ) -> list[TurnVerdict]:
        """Check every referenced turn of ``rows`` in one engine call; each row's :class:`TurnVerdict`."""
        verdicts: dict[int, list[Verdict | None]] = {}
        pending: list[tuple[int, int]] = []
        jobs: list[Job | None] = []
        cells: list[tuple[int, int, str]] = []  # (row, turn, reference) of the turns checked on a one-turn view
        for i in rows:
            n = n_turns(batch, i)
            verdicts[i] = [None] * n
            try:
                refs = turn_references(batch, i, n)
            except ValueError as exc:
                verdicts[i][-1] = Verdict(float("nan"), ERROR, str(exc))
                continue
            if refs is None:  # checked as ``inner`` checks it: the last turn against the answer
                self._add_job(verdicts, pending, jobs, (i, n - 1), batch, i, extra)
            else:
                cells += [(i, k, r) for k, r in enumerate(refs) if r is not None]
        view = turn_view(batch, cells)
        for j, (i, k, _) in enumerate(cells):
            self._add_job(verdicts, pending, jobs, (i, k), view, j, extra)
        for (i, k), verdict in zip(pending, engine.run(self.inner, jobs)):
            verdicts[i][k] = Verdict(0.0, NO_ANSWER) if verdict is None else verdict
        return [score_turns(verdicts[i], base, self.options.aggregate) for i in rows]

    def _add_job(
        self,
        verdicts: dict[int, list[Verdict | None]],
        pending: list[tuple[int, int]],
        jobs: list[Job | None],
        cell: tuple[int, int],
        batch: Batch,
        row: int,
        extra: dict[str, Any] | None,
    ) -> None:
        """Queue the inner verifier's job for ``row`` of ``batch`` as turn ``cell`` (a failed extraction: its error)."""
        try:
            job = self.inner.job_for(batch, row, extra)
        except Exception as exc:  # extraction must never take the run down
            verdicts[cell[0]][cell[1]] = extraction_failed(exc)
            return
        pending.append(cell)
        jobs.append(job)


def n_turns(batch: Batch, i: int) -> int:
    """Assistant turns of row ``i`` (a record without messages is one turn)."""
    t = batch.trajectories
    return max(1, len(t.assistant(i))) if t is not None and t.has_messages(i) else 1


def turn_references(batch: Batch, i: int, n: int) -> list[str | None] | None:
    """Row ``i``'s reference per assistant turn from ``meta.turn_references`` (None: a record without
    messages or without the key, checked whole); ValueError naming the field when malformed."""
    t = batch.trajectories
    if t is None or not t.has_messages(i) or REFERENCES_KEY not in batch.metas[i]:
        return None
    refs = batch.metas[i][REFERENCES_KEY]
    if not isinstance(refs, list):
        raise ValueError(f"meta.{REFERENCES_KEY} must be a list (one reference per assistant turn, null: unchecked)")
    if len(refs) != len(t.assistant(i)):
        raise ValueError(f"meta.{REFERENCES_KEY} has {len(refs)} entries for {len(t.assistant(i))} assistant turns")
    return [answer_text(r) for r in refs]


def turn_view(batch: Batch, cells: Sequence[tuple[int, int, str]]) -> Batch:
    """A batch with one row per ``(row, turn, reference)``: the turn's text as the completion, the
    reference as the answer, the last user message before the turn as the prompt (the record's
    prompt when none), the turn's token count; truncated only on a truncated record's last turn."""
    t = batch.trajectories
    assert t is not None
    flat = [int(t.assistant(i)[k]) for i, k, _ in cells]
    prompts = []
    for (i, _, _), m in zip(cells, flat):
        lo = t.rows(i).start
        users = [x for x in range(lo, m) if t.role[x] == _USER]
        prompts.append(t.text[users[-1]] if users else batch.prompts[i])
    return Batch(
        prompt_ids=[batch.prompt_ids[i] for i, _, _ in cells],
        prompts=prompts,
        completions=[t.text[m] for m in flat],
        answers=[r for _, _, r in cells],
        num_tokens=np.array([t.num_tokens[m] for m in flat], dtype=np.float64),
        truncated=np.array(
            [bool(batch.truncated[i]) and k == len(t.assistant(i)) - 1 for i, k, _ in cells], dtype=bool
        ),
        data_sources=[batch.data_sources[i] for i, _, _ in cells],
        steps=np.array([batch.steps[i] for i, _, _ in cells], dtype=np.int64),
        metas=[batch.metas[i] for i, _, _ in cells],
        turns=[[t.text[m]] for m in flat],
    )


def turn_value(verdict: Verdict, base: BaseValues) -> float:
    """A checked turn's value in ``base`` units (module docstring); unknown is paid ``wrong``."""
    if verdict.status == NO_ANSWER:
        return base.no_answer
    s = 0.0 if math.isnan(verdict.score) else verdict.score
    return base.wrong + s * (base.correct - base.wrong)


def score_turns(verdicts: list[Verdict | None], base: BaseValues, aggregate: str) -> TurnVerdict:
    """The row's verdict, correctness reward and per-turn rewards from its turns' verdicts."""
    checked = [(k, v) for k, v in enumerate(verdicts) if v is not None]
    rewards = [0.0] * len(verdicts)
    if not checked:
        why = f"no assistant turn has a reference (meta.{REFERENCES_KEY})"
        return TurnVerdict(float("nan"), BAD_REFERENCE, why, base.wrong, tuple(rewards), tuple(verdicts))
    values = [turn_value(v, base) for _, v in checked]
    scores = [0.0 if v.status == NO_ANSWER else v.score for _, v in checked]
    if aggregate in ("mean", "sum"):
        weight = 1.0 / len(checked) if aggregate == "mean" else 1.0
        for (k, _), x in zip(checked, values):
            rewards[k] = weight * x
        value, score = sum(rewards), sum(scores) / len(scores)
    else:  # the first turn with the least value, or the last checked turn
        j = values.index(min(values)) if aggregate == "min" else len(checked) - 1
        rewards[checked[j][0]] = value = values[j]
        score = min(scores) if aggregate == "min" else scores[-1]
    statuses = [v.status for _, v in checked]
    unknown = next((s for s in _UNKNOWN_ORDER if s in statuses), None)
    shown = ", ".join("-" if v is None else v.status if math.isnan(v.score) else f"{v.score:.6g}" for v in verdicts)
    detail = f"per_turn=[{shown}] ({aggregate})"
    update = None
    if len(checked) == 1:  # one checked turn (a single-turn record, no references): its verdict as it is
        row = checked[0][1]
        update = getattr(row, "meta_update", None)
    elif unknown is not None:
        first = next(v for _, v in checked if v.status == unknown)
        row = Verdict(float("nan"), unknown, f"{detail}; {first.detail}"[:500])
    elif all(s == NO_ANSWER for s in statuses):
        row = Verdict(0.0, NO_ANSWER, detail)
    else:
        row = Verdict(float(score), OK, detail)
    return TurnVerdict(row.score, row.status, row.detail, float(value), tuple(rewards), tuple(verdicts), update)
