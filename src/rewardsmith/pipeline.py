"""The scoring pipeline: records -> Batch -> verifiers -> format -> shapers -> advantages -> Scores.

The correctness reward follows ``base``: a verified score s in [0, 1] gives
``wrong + s·(correct − wrong)``; no extracted answer gives ``no_answer``; an unknown verdict
(timeout, error, unparseable reference) keeps ``correct = NaN`` and is scored as ``wrong`` so
the total is always defined (the TRL adapter returns ``None`` for such rollouts instead).

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    >>> s = pipe.score([{"prompt_id": "q1", "completion": "Answer: 4", "answer": "4"},
    ...                 {"prompt_id": "q1", "completion": "Answer: 5", "answer": "4"}])
    >>> s.total.tolist(), s.correct.tolist()
    ([1.0, 0.0], [1.0, 0.0])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .advantages.base import AdvantageContext, AdvantageEstimator
from .advantages.dynamic_sampling import dynamic_sampling_report
from .batch import Batch
from .engine import VerificationEngine
from .registry import Component, SpecError, build
from .shaping.base import BaseValues, Shaper, ShapingContext
from .spec import Spec
from .state import State
from .verifiers.base import ERROR, NO_ANSWER, OK, TIMEOUT, Job, Verifier
from .verifiers.format_rewards import score_format

DEFAULT_SOURCE = "default"  # key of the fallback verifier in a data_source -> verifier map


@dataclass
class Scores:
    """Result of scoring a batch. Arrays are aligned with the input records."""

    total: np.ndarray
    correct: np.ndarray  # 1.0 / 0.0 / NaN (unknown)
    components: dict[str, np.ndarray]
    status: list[str]  # verifier status per rollout: ok | no_answer | bad_reference | timeout | error
    length: np.ndarray
    unit: str
    step: int
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # group index per rollout
    advantages: np.ndarray | None = None
    seconds: float = 0.0
    # How much each stage moved the reward: "base" (correctness + format, after the gate) and
    # one entry per shaper; they sum exactly to ``total`` (the TRL adapter logs them apart).
    contributions: dict[str, np.ndarray] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.total)

    def record_fields(self, i: int) -> dict[str, Any]:
        """The fields scoring adds to record ``i``: reward, correct, components (and advantage)."""
        c = self.correct[i]
        out: dict[str, Any] = {
            "reward": float(self.total[i]),
            "correct": None if math.isnan(c) else bool(c == 1.0),
            "components": {k: (None if math.isnan(v[i]) else float(v[i])) for k, v in self.components.items() if k not in ("timeout", "error") or v[i]},
        }
        if self.advantages is not None:
            out["advantage"] = float(self.advantages[i])
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
            "mean_reward": float(np.mean(self.total)) if len(self) else float("nan"),
            "accuracy": float(np.mean(self.correct[known])) if known.any() else float("nan"),
            "unknown_correct": int((~known).sum()),
            "mean_length": float(np.mean(self.length)) if len(self) else float("nan"),
            "unit": self.unit,
            "timeouts": int(sum(s == TIMEOUT for s in self.status)),
            "errors": int(sum(s == ERROR for s in self.status)),
            "groups": n_groups,
            "zero_variance_groups": flat["zero_variance_groups"],  # no GRPO signal: DAPO/DLER drop them
            "seconds": self.seconds,
        }


class Pipeline:
    """A validated spec turned into components, a verification engine and explicit state.

    Build it with :func:`rewardsmith.load_spec`. ``score`` is safe to call from several threads
    (the engine serialises verification; shaping and state updates hold a lock).
    """

    def __init__(self, spec: Spec):
        import threading

        self.spec = spec
        self.base_values = BaseValues(spec.base.correct, spec.base.wrong, spec.base.no_answer)
        routes = spec.verifier_map()
        self.verifiers: dict[str, Verifier] = {}
        if routes is not None:
            if not routes:
                raise SpecError("verifier: an empty data_source map; give at least one data_source or 'default'")
            for source, cfg in routes.items():
                self.verifiers[source] = build("verifier", cfg, field=f"verifier.{source}")  # type: ignore[assignment]
        elif spec.verifier is not None:
            self.verifiers[DEFAULT_SOURCE] = build("verifier", spec.verifier, field="verifier")  # type: ignore[assignment]
        self.routed = routes is not None
        self.format: Component | None = build("format", spec.format.component_options(), field="format") if spec.format else None
        self.shapers: list[tuple[str, Shaper]] = []
        seen: dict[str, int] = {}
        for i, cfg in enumerate(spec.shaping):
            shaper = build("shaper", cfg, field=f"shaping[{i}]")
            seen[shaper.name] = seen.get(shaper.name, 0) + 1
            key = shaper.name if seen[shaper.name] == 1 else f"{shaper.name}_{seen[shaper.name]}"
            self.shapers.append((key, shaper))  # type: ignore[arg-type]
        self.advantage: AdvantageEstimator | None = build("advantage", spec.advantage, field="advantage") if spec.advantage else None  # type: ignore[assignment]
        self.tokenizer = _load_tokenizer(spec.tokenizer) if spec.tokenizer else None
        self.engine = VerificationEngine(spec.workers, spec.timeout_s, spec.cache_size)
        self.state = State(spec_fingerprint=spec.fingerprint())
        if spec.state:
            from pathlib import Path

            if Path(spec.state).exists():
                self.state = State.load(spec.state, expected_fingerprint=spec.fingerprint())
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scoring
    def score(self, batch: Batch | Iterable[dict[str, Any]], step: int | None = None, progress: Callable[[int], None] | None = None) -> Scores:
        """Score a batch (or records); updates and saves the state when the spec has one."""
        t0 = time.perf_counter()
        if not isinstance(batch, Batch):
            batch = Batch.from_records(batch)
        n = len(batch)
        length, unit = batch.lengths(self.spec.length_unit, self.tokenizer)
        verdict_score, status, details = self._verify(batch, progress, step)
        answered = np.array([s != NO_ANSWER for s in status], dtype=bool)
        correct = np.where(np.isnan(verdict_score), np.nan, (verdict_score >= 1.0).astype(np.float64))
        bv = self.base_values
        if self.verifiers:
            partial = np.where(np.isnan(verdict_score), 0.0, verdict_score)
            base = np.where(answered, bv.wrong + partial * (bv.correct - bv.wrong), bv.no_answer)
        else:
            base = np.zeros(n)
        components: dict[str, np.ndarray] = {}
        if self.verifiers:
            components["correctness"] = verdict_score
        format_ok = np.ones(n, dtype=bool)
        reward = base.copy()
        if self.format is not None:
            fmt = np.array([score_format(self.format, c, t, m) for c, t, m in zip(batch.completions, batch.turns, batch.metas)], dtype=np.float64)
            components["format"] = fmt
            format_ok = fmt >= 1.0
            if self.spec.format.mode == "gate":  # type: ignore[union-attr]
                reward = np.where(format_ok, reward, bv.no_answer)
            else:
                reward = reward + self.spec.format.weight * fmt  # type: ignore[union-attr]
        with self._lock:
            if step is None:
                step = self._batch_step(batch)
            contributions: dict[str, np.ndarray] = {}
            for key, shaper in self.shapers:
                ctx = ShapingContext(batch, reward, base, correct, length, unit, answered, format_ok, step, bv, self.state.for_component(key))
                before = reward
                reward, comp = shaper.apply(ctx)
                components[key] = np.asarray(comp, dtype=np.float64)
                contributions[key] = reward - before
            if self.format is not None and self.spec.format.mode == "gate":  # type: ignore[union-attr]
                gated = ~format_ok
                reward = np.where(format_ok, reward, bv.no_answer)  # format failures are never shaped
                for delta in contributions.values():
                    delta[gated] = 0.0
            contributions = {"base": reward - sum(contributions.values(), np.zeros(n)), **contributions}
            if np.isnan(reward).any():
                bad = int(np.flatnonzero(np.isnan(reward))[0])
                raise RuntimeError(f"a shaper produced NaN (record {bad}); components: { {k: v[bad] for k, v in components.items()} }")
            self.state.step = max(self.state.step, step + 1)  # the next step when records carry none
            if self.spec.state:
                self.state.save(self.spec.state)
        timeouts = np.array([s == TIMEOUT for s in status], dtype=np.float64)
        errors = np.array([s == ERROR for s in status], dtype=np.float64)
        if timeouts.any():
            components["timeout"] = timeouts
        if errors.any():
            components["error"] = errors
        advantages = None
        if self.advantage is not None:
            advantages = self.advantage.compute(AdvantageContext(reward, batch.group, batch.n_groups, length, correct))
        return Scores(reward, correct, components, status, length, unit, step, group=batch.group, advantages=advantages,
                      seconds=time.perf_counter() - t0, details=details, contributions=contributions)

    def score_records(self, records: Sequence[dict[str, Any]], step: int | None = None, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Score records and return them with ``reward``, ``correct``, ``components`` (and ``advantage``)."""
        return self.score(records, step, progress).to_records(records)

    def _batch_step(self, batch: Batch) -> int:
        """The training step of a batch scored without one: its records' latest, else the state's."""
        known = batch.steps[batch.steps >= 0]
        return int(known.max()) if len(known) else self.state.step

    def _verify(self, batch: Batch, progress: Callable[[int], None] | None, step: int | None = None) -> tuple[np.ndarray, list[str], list[str]]:
        n = len(batch)
        scores = np.full(n, np.nan)
        status = [OK] * n
        details = [""] * n
        if not self.verifiers:
            if progress:
                progress(n)
            return scores, status, details
        by_verifier: dict[str, list[int]] = {}
        for i, source in enumerate(batch.data_sources):
            key = source if self.routed and source in self.verifiers else DEFAULT_SOURCE
            if key not in self.verifiers:
                status[i], details[i] = ERROR, f"no verifier for data_source {source!r}; spec maps: {', '.join(self.verifiers)}"
                if progress:
                    progress(1)
                continue
            by_verifier.setdefault(key, []).append(i)
        for key, rows in by_verifier.items():
            verifier = self.verifiers[key]
            jobs: list[Job | None] = []
            for i in rows:
                try:
                    meta = batch.metas[i]
                    if getattr(verifier, "step_scheduled", False):  # the step the shapers will see, in meta.step
                        meta = {**meta, "step": self._batch_step(batch) if step is None else step}
                    jobs.append(verifier.job(batch.completions[i], batch.answers[i], meta))
                except Exception as exc:  # extraction must never take the run down
                    jobs.append(None)
                    status[i], details[i] = ERROR, f"extraction failed: {type(exc).__name__}: {exc}"
            verdicts = self.engine.run(verifier, jobs, progress)
            if progress:
                progress(sum(job is None for job in jobs))
            for i, verdict in zip(rows, verdicts):
                if status[i] == ERROR:
                    continue
                if verdict is not None:
                    scores[i], status[i], details[i] = verdict.score, verdict.status, verdict.detail
                else:  # no answer found: wrong whatever the reference (a missing one included)
                    scores[i], status[i] = 0.0, NO_ANSWER
        return scores, status, details

    # ------------------------------------------------------------------ lifecycle
    def save_state(self) -> None:
        if self.spec.state:
            with self._lock:
                self.state.save(self.spec.state)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "state": self.state}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__init__(data["spec"])
        self.state = data["state"]

    def __repr__(self) -> str:
        return f"Pipeline(verifiers={list(self.verifiers)}, shaping={[k for k, _ in self.shapers]}, advantage={self.advantage and self.advantage.name})"


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
