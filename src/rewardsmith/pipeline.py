"""The scoring pipeline: records -> Batch -> stages -> Scores, and :func:`load_spec` that builds it.

``Pipeline.score`` runs five named stages, each a small method:

1. **verify** (extract, then check in the engine): a verdict score s in [0, 1] or NaN (unknown);
2. **correctness**: the ``base`` values — ``wrong + s·(correct − wrong)``, ``no_answer`` when
   nothing was extracted; an unknown verdict (timeout, error, unparseable reference) keeps
   ``correct = NaN`` and is paid as ``wrong`` so the total is always defined (the TRL adapter
   returns ``None`` for such rollouts instead);
3. **format**: ``mode: add`` adds ``weight·f``; ``mode: gate`` marks rows with f < 1 as failed;
4. **shape**: each shaper in spec order maps the reward so far to a new reward;
5. **gate**: a row that failed a gating format check is paid ``no_answer``, whatever came before
   (format failures are never shaped); then **advantages** over the final reward.

An unknown *model* judgement (status ``judge_failed``: the judge failed, refused, was
unparseable or over budget) goes further than other unknown verdicts: shapers see it at
``wrong``, but its reward and components end NaN (``null`` in records) and the advantage
estimator runs over the known rows only (the unknown row's advantage is 0).

The components contract (the one place it is defined): ``Scores.components`` — the output
records' ``components`` — are the stages' contributions to the reward, and on every row they sum
exactly to ``reward``: ``correctness`` (the base value above), ``format`` (``weight·f`` in add
mode), one entry per shaper (how much it moved the reward; 0 on gated rows), and ``gate`` (what
the format gate added or removed; gate mode only). What each stage measured before it was
combined is kept apart in ``Scores.values``: the verifier's score, the format score and each
shaper's own value; a record carries the verdict as ``correct`` and the format check as
``format_ok``.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    >>> s = pipe.score([{"prompt_id": "q1", "completion": "Answer: 4", "answer": "4"},
    ...                 {"prompt_id": "q1", "completion": "Answer: 5", "answer": "4"}])
    >>> s.total.tolist(), s.correct.tolist()
    ([1.0, 0.0], [1.0, 0.0])
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .advantages.base import AdvantageContext, AdvantageEstimator, known_advantages
from .advantages.dynamic_sampling import dynamic_sampling_report
from .batch import Batch
from .components import build
from .engine import VerificationEngine
from .registry import Component, SpecError
from .shaping.base import Dense, Shaper, ShapingContext
from .shaping.dominance import wrong_beats_correct
from .signals import Scorer, Signals, required_signals
from .spec import Spec, parse_spec
from .state import State
from .types import ERROR, JUDGE_FAILED, NO_ANSWER, OK, TIMEOUT, Job
from .verifiers.base import Verdict, Verifier, extraction_failed
from .verifiers.format_rewards import score_format
from .verifiers.per_turn import PerTurnVerifier, n_turns

DEFAULT_SOURCE = "default"  # key of the fallback verifier in a data_source -> verifier map


@dataclass
class Scores:
    """Result of scoring a batch. Arrays are aligned with the input records."""

    total: np.ndarray
    correct: np.ndarray  # 1.0 / 0.0 / NaN (unknown)
    components: dict[str, np.ndarray]  # each stage's contribution; they sum exactly to ``total`` (module docstring)
    status: list[str]  # verifier status per rollout: ok | no_answer | bad_reference | timeout | error
    length: np.ndarray
    unit: str
    step: int
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # group index per rollout
    advantages: np.ndarray | None = None
    seconds: float = 0.0
    values: dict[str, np.ndarray] = field(default_factory=dict)  # what each stage measured (verdict score, format, ...)
    details: list[str] = field(default_factory=list)
    dense: Dense | None = None  # per-token/step/turn rewards (and advantages) of the spec's dense component

    def __len__(self) -> int:
        return len(self.total)

    def record_fields(self, i: int) -> dict[str, Any]:
        """The fields scoring adds to record ``i``: reward, correct, components (and format_ok, status, advantage)."""
        c = self.correct[i]
        out: dict[str, Any] = {
            "reward": None if math.isnan(self.total[i]) else float(self.total[i]),
            "correct": None if math.isnan(c) else bool(c == 1.0),
            "components": {k: None if math.isnan(v[i]) else float(v[i]) for k, v in self.components.items()},
        }
        if "format" in self.values:
            out["format_ok"] = bool(self.values["format"][i] >= 1.0)
        if self.status[i] in (TIMEOUT, ERROR, JUDGE_FAILED):
            out["status"] = self.status[i]
        if self.advantages is not None:
            out["advantage"] = float(self.advantages[i])
        if self.dense is not None:
            d = self.dense
            out["dense"] = {"unit": d.unit, "rewards": d.rewards[i]}
            if d.advantages:
                out["dense"]["advantages"] = d.advantages[i]
            if d.verdicts is not None:
                out["dense"]["verdicts"] = d.verdicts[i]
        return out

    def to_records(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of ``records`` (every input field, input order) with the scoring fields added."""
        if len(records) != len(self):
            raise ValueError(f"{len(records)} records for {len(self)} scores")
        return [{**rec, **self.record_fields(i)} for i, rec in enumerate(records)]

    def summary(self) -> dict[str, Any]:
        known = ~np.isnan(self.correct)
        n_groups = int(self.group.max()) + 1 if len(self.group) else 0
        flat = dynamic_sampling_report(self.total, self.group, n_groups)
        return {
            "records": len(self),
            "mean_reward": float(np.nanmean(self.total)) if (~np.isnan(self.total)).any() else float("nan"),
            "accuracy": float(np.mean(self.correct[known])) if known.any() else float("nan"),
            "unknown_correct": int((~known).sum()),
            "mean_length": float(np.mean(self.length)) if len(self) else float("nan"),
            "unit": self.unit,
            "timeouts": int(sum(s == TIMEOUT for s in self.status)),
            "errors": int(sum(s == ERROR for s in self.status)),
            "judge_failed": int(sum(s == JUDGE_FAILED for s in self.status)),  # reward null, no advantage
            "groups": n_groups,
            "zero_variance_groups": flat["zero_variance_groups"],  # no GRPO signal: DAPO/DLER drop them
            "single_rollout_groups": flat["single_rollout_groups"],
            "seconds": self.seconds,
        }


@dataclass
class Verified:
    """What :meth:`Pipeline.verify` measured, per rollout: lengths, verdicts, statuses and format scores.

    Built by an adapter whose framework verifies one rollout at a time and shapes whole groups
    elsewhere (verl's advantage step): ``verdict`` in [0, 1] or NaN, ``format`` None without a check."""

    batch: Batch
    length: np.ndarray
    unit: str
    verdict: np.ndarray
    status: list[str]
    details: list[str]
    format: np.ndarray | None = None
    dense: Dense | None = None  # per-unit rewards from the verdicts (``Verifier.dense_unit``)
    correctness: np.ndarray | None = None  # the correctness reward a verifier gives itself (per_turn); NaN: none


@dataclass
class _Stages:
    """What the stages of one ``score`` call pass along."""

    batch: Batch
    length: np.ndarray
    unit: str
    verdict: np.ndarray  # verifier score in [0, 1], NaN unknown
    status: list[str]
    details: list[str]
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0))
    base: np.ndarray = field(default_factory=lambda: np.zeros(0))
    format_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    components: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    signals: Signals | None = None
    dense: dict[str, Dense] = field(default_factory=dict)
    own_correctness: np.ndarray | None = None  # ``Verified.correctness``

    @property
    def answered(self) -> np.ndarray:
        return np.array([s != NO_ANSWER for s in self.status], dtype=bool)

    @property
    def correct(self) -> np.ndarray:
        return np.where(np.isnan(self.verdict), np.nan, (self.verdict >= 1.0).astype(np.float64))


class Pipeline:
    """A validated spec turned into components, a verification engine and explicit state.

    Build it with :func:`load_spec`. ``engine`` is any object with the
    :class:`~rewardsmith.engine.VerificationEngine` interface (``run``, ``close``); by default a
    local process pool sized by the spec. ``score`` is safe to call from several threads (the
    engine serialises verification; shaping and state updates hold a lock).
    """

    def __init__(self, spec: Spec, engine: Any = None):
        self.spec = spec
        self.base_values = spec.base
        self.verifiers: dict[str, Verifier] = _build_verifiers(spec)
        self.routed = spec.verifier_map() is not None
        self.format: Component | None = (
            build("format", spec.format.component_options(), field="format") if spec.format else None
        )
        self.shapers: list[tuple[str, Shaper]] = _build_shapers(spec)
        _warn_if_wrong_beats_correct(self)
        self.advantage: AdvantageEstimator | None = (
            build("advantage", spec.advantage, field="advantage") if spec.advantage else None
        )  # type: ignore[assignment]
        self.tokenizer = _load_tokenizer(spec.tokenizer) if spec.tokenizer else None
        self.needs_signals = required_signals([s for _, s in self.shapers])
        # signal models by local path, loaded on first use; put a loaded model here to reuse it (a trainer's policy)
        self.scorers: dict[str, Scorer] = {}
        self._unit_warned = False  # the tokens-to-words fallback is announced once per pipeline
        self._load_lock = threading.Lock()  # apart from _lock: continuations are scored while shaping holds it
        dense = [key for key, s in self.shapers if s.dense_unit]
        verifier_units = {v.dense_unit for v in self.verifiers.values() if v.dense_unit}
        dense += [f"verifier {v.name}" for v in self.verifiers.values() if v.dense_unit][: max(1, len(verifier_units))]
        if len(dense) > 1:
            raise SpecError(
                f"shaping: at most one component with per-unit (dense) output per spec; got {', '.join(dense)}"
            )
        units = [s.dense_unit for _, s in self.shapers if s.dense_unit]
        units += [v.dense_unit for v in self.verifiers.values() if v.dense_unit]
        if getattr(self.advantage, "turn_level", False) and any(u != "turn" for u in units):
            raise SpecError(
                f"advantage: {self.advantage.name} gives per-turn advantages; the spec's dense component is per "
                f"{next(u for u in units if u != 'turn')}, not per turn"
            )
        self.engine = (
            engine if engine is not None else VerificationEngine(spec.workers, spec.timeout_s, spec.cache_size)
        )
        self.state = State(spec_fingerprint=spec.fingerprint())
        if spec.state and Path(spec.state).exists():
            self.state = State.load(spec.state, expected_fingerprint=spec.fingerprint())
            self.state.check_components({key: shaper.check_state for key, shaper in self.shapers}, where=spec.state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        batch: Batch | Iterable[dict[str, Any]],
        step: int | None = None,
        progress: Callable[[int], None] | None = None,
        save: bool = True,
    ) -> Scores:
        """Score a batch (or records) through the stages; updates the state, and saves it when the spec
        has one and ``save``. A call that raises leaves the state as it was (``rewardsmith score``
        passes ``save=False`` and saves only after its output is written)."""
        t0 = time.perf_counter()
        return self.score_verified(self.verify(batch, progress, step), step, save, t0)

    def verify(
        self,
        batch: Batch | Iterable[dict[str, Any]],
        progress: Callable[[int], None] | None = None,
        step: int | None = None,
    ) -> Verified:
        """What ``score`` measures one rollout at a time, touching no state: lengths, the verdicts
        (stage 1) and the format scores (stage 3's measurement)."""
        if not isinstance(batch, Batch):
            batch = Batch.from_records(batch)
        length, unit = batch.lengths(self.spec.length_unit, self.tokenizer)
        if unit != self.spec.length_unit and self.shapers and not self._unit_warned:
            self._unit_warned = True
            warnings.warn(
                f"spec {self.spec.name or '(unnamed)'}: length_unit is {self.spec.length_unit!r} but no record carries a "
                f"token count (num_tokens, per-turn num_tokens or logprobs, token ids) and the spec has no tokenizer: "
                f"lengths are counted in {unit}, so token budgets and targets apply to {unit}; give token counts, "
                f"a `tokenizer:`, or set length_unit: {unit}",
                RewardWarning,
                stacklevel=3,
            )
        verdict, status, details, verdict_dense, correctness = self._verify(batch, progress, step)
        fmt = self._format_scores(batch)
        return Verified(batch, length, unit, verdict, status, details, fmt, verdict_dense, correctness)

    def score_verified(
        self, verified: Verified, step: int | None = None, save: bool = True, t0: float | None = None
    ) -> Scores:
        """The stages after verification (``score`` is ``verify`` then this): signals, correctness,
        format, shaping, gate and advantages over whole groups; state as in ``score``."""
        t0 = time.perf_counter() if t0 is None else t0
        v = verified
        st = _Stages(v.batch, v.length, v.unit, v.verdict, v.status, v.details, own_correctness=v.correctness)
        if v.dense is not None:  # a verifier's per-unit rewards (a segment-level reward model)
            st.dense["correctness"] = v.dense
        self._signals(st)
        self._correctness(st)
        self._format(st, v.format)
        with self._lock, self.restored_on_error():
            step = self._step(v.batch, step)
            self._shape(st, step)
            self._gate(st)
            self._advance_state(step, save)
        advantages, turn_advantages = self._advantages(st)
        self._unknown_judgements(st)
        return Scores(
            st.reward,
            st.correct,
            st.components,
            v.status,
            v.length,
            v.unit,
            step,
            group=v.batch.group,
            advantages=advantages,
            seconds=time.perf_counter() - t0,
            values=st.values,
            details=v.details,
            dense=_dense(st, turn_advantages),
        )

    def _signals(self, st: _Stages) -> None:
        """Stage 1b: the model signals the components need, each fetched once for the batch
        (:mod:`rewardsmith.signals`)."""
        if not self.needs_signals:
            return
        cfg = self.spec.signals
        st.signals = Signals(
            st.batch,
            self._scorer_loader(cfg.model if cfg else None),
            self._scorer_loader(cfg.ref_model if cfg else None),
        )
        st.signals.prefetch(self.needs_signals)

    def _scorer_loader(self, path: str | None) -> Callable[[], Scorer] | None:
        """A loader of the causal LM at ``path`` (loaded once per pipeline, on first use); None without a path."""
        if path is None:
            return None

        def load() -> Scorer:
            with self._load_lock:
                if path not in self.scorers:
                    from .lm_signals import CausalLMScorer  # the 'lm' extra, only for specs with a signals model

                    cfg = self.spec.signals
                    assert cfg is not None  # a path comes from the spec's signals key
                    self.scorers[path] = CausalLMScorer.from_path(path, cfg.dtype, cfg.device, cfg.batch_size)
                return self.scorers[path]

        return load

    def _correctness(self, st: _Stages) -> None:
        """Stage 2: the base values for the verdicts (zero reward without a verifier)."""
        bv = self.base_values
        if self.verifiers:
            partial = np.where(np.isnan(st.verdict), 0.0, st.verdict)
            st.base = np.where(st.answered, bv.wrong + partial * (bv.correct - bv.wrong), bv.no_answer)
            if st.own_correctness is not None:  # a per_turn verifier's aggregated turn values
                st.base = np.where(np.isnan(st.own_correctness), st.base, st.own_correctness)
            st.components["correctness"] = st.base
            st.values["correctness"] = st.verdict
        else:
            st.base = np.zeros(len(st.batch))
        st.reward = st.base.copy()

    def _format_scores(self, batch: Batch) -> np.ndarray | None:
        """Each row's format score (None without a format check)."""
        if self.format is None:
            return None
        return np.array(
            [score_format(self.format, c, t, m) for c, t, m in zip(batch.completions, batch.turns, batch.metas)],
            dtype=np.float64,
        )

    def _format(self, st: _Stages, fmt: np.ndarray | None) -> None:
        """Stage 3: the format score; added with its weight in ``add`` mode, a pass/fail gate in ``gate`` mode."""
        st.format_ok = np.ones(len(st.batch), dtype=bool)
        if fmt is None:
            return
        st.values["format"] = fmt
        st.format_ok = fmt >= 1.0
        if self.spec.format.mode == "add":  # type: ignore[union-attr]
            st.components["format"] = self.spec.format.weight * fmt  # type: ignore[union-attr]
            st.reward = st.reward + st.components["format"]
        else:  # shapers see a failed row at ``no_answer``; stage 5 accounts for it under ``gate``
            st.reward = np.where(st.format_ok, st.reward, self.base_values.no_answer)

    def _step(self, batch: Batch, step: int | None) -> int:
        """The training step: the caller's, else the records' latest, else the state's counter."""
        if step is not None:
            return step
        known = batch.steps[batch.steps >= 0]
        return int(known.max()) if len(known) else self.state.step

    def _shape(self, st: _Stages, step: int) -> None:
        """Stage 4: each shaper in spec order; its contribution is how much it moved the reward."""
        unknown = np.array([s == JUDGE_FAILED for s in st.status], dtype=bool)
        for key, shaper in self.shapers:
            ctx = ShapingContext(
                st.batch,
                st.reward,
                st.base,
                st.correct,
                st.length,
                st.unit,
                st.answered,
                st.format_ok,
                step,
                self.base_values,
                self.state.for_component(key),
                st.signals,
                st.dense,
                unknown,
            )
            new, value = shaper.apply(ctx)
            st.values[key] = np.asarray(value, dtype=np.float64)
            st.components[key] = new - st.reward
            st.reward = new
            if np.isnan(st.reward).any():
                bad = int(np.flatnonzero(np.isnan(st.reward))[0])
                values = {k: v[bad] for k, v in st.values.items()}
                raise RuntimeError(f"shaper {key} produced NaN (record {bad}); values: {values}")

    def _gate(self, st: _Stages) -> None:
        """Stage 5: a gating format failure is paid ``no_answer``; shapers' moves on it become the gate's."""
        if self.format is None or self.spec.format.mode != "gate":  # type: ignore[union-attr]
            return
        gated = ~st.format_ok
        for key, _ in self.shapers:
            st.components[key] = np.where(gated, 0.0, st.components[key])
        kept = sum(st.components.values(), np.zeros(len(st.batch)))
        st.reward = np.where(gated, self.base_values.no_answer, st.reward)
        st.components["gate"] = st.reward - kept

    def _advance_state(self, step: int, save: bool) -> None:
        self.state.step = max(self.state.step, step + 1)  # the next step when records carry none
        if self.spec.state and save:
            self.state.save(self.spec.state)

    @contextlib.contextmanager
    def restored_on_error(self) -> Iterator[None]:
        """Put the state back as it was if the block raises (a failed batch changes nothing)."""
        before = (self.state.step, copy.deepcopy(self.state.components))
        try:
            yield
        except BaseException:
            self.state.step, self.state.components = before
            raise

    def _advantages(self, st: _Stages) -> tuple[np.ndarray | None, list[list[float]] | None]:
        """Stage 6: the advantage estimator over the final reward (a turn-level one over the turn
        rewards too: the dense turn rewards, else the reward on each row's last turn)."""
        if self.advantage is None:
            return None, None
        known = np.array([s != JUDGE_FAILED for s in st.status], dtype=bool)
        turns = None
        if getattr(self.advantage, "turn_level", False):
            turns = [np.array(r, dtype=np.float64) for r in _dense(st, sparse_turns=True).rewards]  # type: ignore[union-attr]
        ctx = AdvantageContext(st.reward, st.batch.group, st.batch.n_groups, st.length, st.correct, turns)
        return known_advantages(self.advantage, ctx, known), ctx.turn_advantages

    def _unknown_judgements(self, st: _Stages) -> None:
        """After the advantages: an unknown judgement's reward and contributions are NaN (null), never a score."""
        unknown = np.array([s == JUDGE_FAILED for s in st.status], dtype=bool)
        if unknown.any():
            st.reward = np.where(unknown, np.nan, st.reward)
            st.components = {k: np.where(unknown, np.nan, v) for k, v in st.components.items()}

    def score_records(
        self, records: Sequence[dict[str, Any]], step: int | None = None, progress: Callable[[int], None] | None = None
    ) -> list[dict[str, Any]]:
        """Score records and return them with ``reward``, ``correct``, ``components`` (and ``advantage``)."""
        return self.score(records, step, progress).to_records(records)

    def _verify(
        self, batch: Batch, progress: Callable[[int], None] | None, step: int | None = None
    ) -> tuple[np.ndarray, list[str], list[str], Dense | None, np.ndarray | None]:
        """Stage 1: extract each answer here, check it in the engine; (scores, statuses, details, dense,
        correctness). A step-scheduled verifier gets the step the shapers will see as ``meta.step``; a
        verifier with ``dense_unit`` gives per-unit rewards in its verdicts (rows it did not score:
        none), and a ``per_turn`` one its correctness reward and turn verdicts too."""
        n = len(batch)
        scores = np.full(n, np.nan)
        status = [OK] * n
        details = [""] * n
        units = {v.dense_unit for v in self.verifiers.values() if v.dense_unit}
        dense = Dense(units.pop(), [[] for _ in range(n)]) if units else None
        correctness = None
        if not self.verifiers:
            if progress:
                progress(n)
            return scores, status, details, dense, correctness
        by_verifier: dict[str, list[int]] = {}
        for i, source in enumerate(batch.data_sources):
            key = source if self.routed and source in self.verifiers else DEFAULT_SOURCE
            if key not in self.verifiers:
                status[i], details[i] = (
                    ERROR,
                    f"no verifier for data_source {source!r}; spec maps: {', '.join(self.verifiers)}",
                )
                if progress:
                    progress(1)
                continue
            by_verifier.setdefault(key, []).append(i)
        for key, rows in by_verifier.items():
            verifier = self.verifiers[key]
            # a step-scheduled verifier gets the step the shapers will see, in meta.step
            extra = {"step": self._step(batch, step)} if verifier.step_scheduled else None
            if isinstance(verifier, PerTurnVerifier):
                verdicts: list[Verdict] = list(verifier.verify_rows(batch, rows, extra, self.engine, self.base_values))
                if progress:
                    progress(len(rows))
            else:
                verdicts = self._verify_rows(verifier, batch, rows, extra, progress)
            for i, verdict in zip(rows, verdicts):
                scores[i], status[i], details[i] = verdict.score, verdict.status, verdict.detail
                if getattr(verdict, "meta_update", None):  # e.g. a reward model's scores of reference responses
                    batch.metas[i] = {**batch.metas[i], **verdict.meta_update}
                if dense is not None and getattr(verdict, "dense", None) is not None:
                    dense.rewards[i] = list(verdict.dense)
                if dense is not None and getattr(verdict, "turns", None) is not None:  # a per_turn verifier's
                    dense.verdicts = dense.verdicts or [[] for _ in range(n)]
                    dense.verdicts[i] = verdict.turn_scores
                    correctness = np.full(n, np.nan) if correctness is None else correctness
                    correctness[i] = verdict.reward
        return scores, status, details, dense, correctness

    def _verify_rows(
        self,
        verifier: Verifier,
        batch: Batch,
        rows: list[int],
        extra: dict[str, Any] | None,
        progress: Callable[[int], None] | None,
    ) -> list[Verdict]:
        """One verifier's verdicts for ``rows``: jobs extracted here, checked in the engine; a row without
        an answer is ``no_answer`` (wrong whatever the reference, a missing one included)."""
        jobs: list[Job | None] = []
        failed: dict[int, Verdict] = {}
        for j, i in enumerate(rows):
            try:
                jobs.append(verifier.job_for(batch, i, extra))
            except Exception as exc:  # extraction must never take the run down
                jobs.append(None)
                failed[j] = extraction_failed(exc)
        verdicts = self.engine.run(verifier, jobs, progress)
        if progress:
            progress(sum(job is None for job in jobs))
        return [failed.get(j) or v or Verdict(0.0, NO_ANSWER) for j, v in enumerate(verdicts)]

    def component_names(self) -> list[str]:
        """The names of ``Scores.components`` for this spec, in stage order."""
        names = ["correctness"] if self.verifiers else []
        if self.spec.format is not None and self.spec.format.mode == "add":
            names.append("format")
        names += [key for key, _ in self.shapers]
        return names + (["gate"] if self.spec.format is not None and self.spec.format.mode == "gate" else [])

    # ------------------------------------------------------------------ lifecycle
    def with_engine(self, engine: Any) -> Pipeline:
        """A pipeline of the same spec sharing this one's State, verifying on ``engine``."""
        twin = Pipeline(self.spec, engine=engine)
        twin.state = self.state
        return twin

    def save_state(self) -> None:
        if self.spec.state:
            with self._lock:
                self.state.save(self.spec.state)

    def start_workers(self) -> None:
        """Start the engine's verification workers now, loading this spec's isolated verifiers, so the
        first batch does not pay their start-up (a no-op without isolated verifiers or for an engine
        without ``start``)."""
        isolated = [v for v in self.verifiers.values() if v.isolate]
        start = getattr(self.engine, "start", None)
        if isolated and callable(start):
            start(isolated)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "state": self.state}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__init__(data["spec"])  # a fresh local engine: an engine is never pickled
        self.state = data["state"]

    def __repr__(self) -> str:
        return f"Pipeline(verifiers={list(self.verifiers)}, shaping={[k for k, _ in self.shapers]}, advantage={self.advantage and self.advantage.name})"


class RewardWarning(UserWarning):
    """A spec that loads but rewards something it should not (see ``rewardsmith probe``)."""


def _warn_if_wrong_beats_correct(pipe: Pipeline) -> None:
    """Warn at load when the spec's shaping lets a wrong answer tie or beat a correct one (see
    :func:`rewardsmith.shaping.dominance.wrong_beats_correct`; ``rewardsmith probe`` reports every case)."""
    found = wrong_beats_correct(pipe.base_values, pipe.shapers, pipe.spec.length_unit) if pipe.verifiers else []
    if found:
        name = f"spec {pipe.spec.name}: " if pipe.spec.name else ""
        warnings.warn(
            f"{name}{found[0].message(pipe.spec.length_unit)}; run `rewardsmith probe` for details",
            RewardWarning,
            stacklevel=4,
        )


def _dense(st: _Stages, turn_advantages: list[list[float]] | None = None, sparse_turns: bool = False) -> Dense | None:
    """The dense component's output, each row's last unit also carrying the rest of the reward
    (rows sum to ``reward``), with a turn-level estimator's ``turn_advantages``. Without a dense
    component, turn advantages (or ``sparse_turns``) come with the sparse turn rewards: 0 on each
    assistant turn but the last, which carries the reward (a record without messages is one turn)."""
    if not st.dense:
        if turn_advantages is None and not sparse_turns:
            return None
        sizes = [n_turns(st.batch, i) for i in range(len(st.batch))]
        rows = [[0.0] * (n - 1) + [float(st.reward[i])] for i, n in enumerate(sizes)]
        return Dense("turn", rows, turn_advantages)
    (d,) = st.dense.values()
    rewards = []
    for i, row in enumerate(d.rewards):
        row = list(row) or ([0.0] * n_turns(st.batch, i) if d.unit == "turn" else [])  # a row no turn unit scored
        if row:
            row[-1] += float(st.reward[i]) - sum(row)
        rewards.append(row)
    return Dense(d.unit, rewards, turn_advantages if turn_advantages is not None else d.advantages, d.verdicts)


def _load_tokenizer(path: str) -> Callable[[str], Sequence[int]]:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise SpecError("tokenizer: needs the 'lm' extra (transformers)") from None
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise SpecError(f"tokenizer: cannot load a local tokenizer from {path!r}: {exc}") from None
    return lambda text: tok(text, add_special_tokens=False)["input_ids"]


def _build_verifiers(spec: Spec) -> dict[str, Verifier]:
    """``{data_source: verifier}`` (one ``default`` entry for a single verifier; empty without one)."""
    routes = spec.verifier_map()
    if routes is not None:
        if not routes:
            raise SpecError("verifier: an empty data_source map; give at least one data_source or 'default'")
        return {source: _build_verifier(cfg, field=f"verifier.{source}") for source, cfg in routes.items()}
    if spec.verifier is not None:
        return {DEFAULT_SOURCE: _build_verifier(spec.verifier, field="verifier")}
    return {}


def _build_verifier(config: Any, field: str) -> Verifier:
    """A verifier; a ``per_turn`` one gets its ``inner`` verifier built (any name, import path or plugin)."""
    verifier: Verifier = build("verifier", config, field=field)  # type: ignore[assignment]
    if isinstance(verifier, PerTurnVerifier):
        verifier.bind(build("verifier", verifier.options.inner, field=f"{field}.inner"))  # type: ignore[attr-defined,arg-type]
    return verifier


def _build_shapers(spec: Spec) -> list[tuple[str, Shaper]]:
    """``(key, shaper)`` in spec order; a shaper used twice gets keys ``name``, ``name_2``, ..."""
    shapers: list[tuple[str, Shaper]] = []
    seen: dict[str, int] = {}
    for i, cfg in enumerate(spec.shaping):
        shaper = build("shaper", cfg, field=f"shaping[{i}]")
        seen[shaper.name] = seen.get(shaper.name, 0) + 1
        key = shaper.name if seen[shaper.name] == 1 else f"{shaper.name}_{seen[shaper.name]}"
        shapers.append((key, shaper))  # type: ignore[arg-type]
    return shapers


def load_spec(source: str | os.PathLike | dict[str, Any] | Spec, engine: Any = None, **overrides: Any) -> Pipeline:
    """Validate a spec and build its :class:`Pipeline` (component names and options checked too).

    ``engine`` replaces the default local verification engine (e.g. a Ray engine);
    ``overrides`` replace top-level keys (e.g. ``workers=2``, ``state=None``).
    """
    spec = parse_spec(source)
    if overrides:
        spec = parse_spec({**spec.model_dump(exclude_none=True), **overrides})
    return Pipeline(spec, engine=engine)
