"""The verifier interface.

A verifier works in two halves so the expensive half can run isolated:
``extract`` (cheap, in the calling process) pulls the candidate answer out of a completion;
``check`` (in a worker process with a hard timeout when ``isolate`` is true) compares it with
the reference and returns a :class:`Verdict`. A verifier that is cheaper called once for many
jobs (a TRL-style reward function) may also define ``check_batch(jobs) -> list[Verdict]``: the
engine then calls it once per chunk of jobs instead of ``check`` once per job.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from ..registry import Component
from ..types import BAD_REFERENCE, ERROR, JUDGE_FAILED, NO_ANSWER, OK, TIMEOUT, Job, Verdict

__all__ = [
    "BAD_REFERENCE",
    "ERROR",
    "JUDGE_FAILED",
    "NO_ANSWER",
    "OK",
    "TIMEOUT",
    "Job",
    "Verdict",
    "Verifier",
    "extraction_failed",
]

if TYPE_CHECKING:
    from ..batch import Batch


class Verifier(Component):
    kind = "verifier"
    isolate: ClassVar[bool] = True  # run ``check`` in a worker process with a hard timeout
    reads_prompt: ClassVar[bool] = False  # True: :meth:`job_for` puts the record's prompt in ``meta.prompt``
    # set (e.g. "segment") by a verifier whose verdicts carry per-unit rewards in ``verdict.dense``
    dense_unit: str | None = None

    def extract(self, completion: str) -> str | None:
        """The answer found in ``completion``, or None when there is none."""
        raise NotImplementedError

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        """The job to run for one record, or None when there is no answer to check."""
        pred = self.extract(completion)
        return None if pred is None else Job(pred, reference)

    def job_for(self, batch: Batch, i: int, extra: dict[str, Any] | None = None) -> Job | None:
        """The job for row ``i`` of ``batch`` (``extra`` added to its meta: the pipeline's step for a
        step-scheduled verifier); verifiers that read more of the record than (completion, answer,
        meta) override this. A verifier with ``reads_prompt`` (the model-backed scorers) gets the
        record's prompt in ``meta.prompt``."""
        meta = {**batch.metas[i], "prompt": batch.prompts[i]} if self.reads_prompt else batch.metas[i]
        if extra:
            meta = {**meta, **extra}
        return self.job(batch.completions[i], batch.answers[i], meta)

    def check(self, job: Job) -> Verdict:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Load what ``check`` needs (slow imports, parsers); the engine runs it off any item's clock."""

    def needs_warm_up(self, job: Job) -> bool:
        """Whether checking ``job`` needs :meth:`warm_up` first (False: decided without the slow imports)."""
        return True

    @property
    def cache_key(self) -> str:
        cls = type(self)  # the class too: a user's subclass may inherit a built-in's name
        options = json.dumps(self.options.model_dump(), sort_keys=True, default=str)
        return f"{cls.__module__}.{cls.__qualname__}:{self.name}:{options}"


def extraction_failed(exc: Exception) -> Verdict:
    """The verdict of a record whose job could not be made (``job_for`` raised): ``error``, never a crash."""
    return Verdict(float("nan"), ERROR, f"extraction failed: {type(exc).__name__}: {exc}")
