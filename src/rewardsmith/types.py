"""The bottom layer: what verification passes around (Verdict, Job, statuses), the Verifier protocol
and the base correctness values.

Everything here depends on the standard library only, so the engine, the registry and every
component can import it without importing each other.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

# Verdict statuses; "error" is set by the engine; "timeout" by the engine (hard limit) or by a
# verifier whose own time limit fired (the verdict is unknown either way).
OK, NO_ANSWER, BAD_REFERENCE, TIMEOUT, ERROR = (
    "ok",
    "no_answer",
    "bad_reference",
    "timeout",
    "error",
)
# A model-judged verdict that is unknown (failed request, refusal, unparseable reply, over budget):
# the pipeline leaves its reward null and out of the advantages.
JUDGE_FAILED = "judge_failed"
MAX_STEP = 10**12  # a training step beyond this is a corrupt or hostile value, not a run


@dataclass(frozen=True)
class Verdict:
    """``score`` in [0, 1] (1 = correct; partial credit allowed) or NaN when unknown."""

    score: float
    status: str = OK
    detail: str = ""

    @property
    def correct(self) -> bool | None:
        return None if math.isnan(self.score) else self.score >= 1.0


@dataclass(frozen=True)
class Job:
    """One unit of verification: what ``check`` receives; ``key`` identifies duplicates."""

    prediction: str
    reference: str | None
    meta: Any = None

    @property
    def key(self) -> str:
        meta = "" if self.meta is None else json.dumps(self.meta, sort_keys=True, default=str)
        return f"{self.prediction}\x00{self.reference}\x00{meta}"


@dataclass(frozen=True)
class BaseValues:
    """The correctness reward, ``base: {correct, wrong, no_answer}`` in a spec (LASER: ``{1, -0.5, -1}``).

    A verified score s in [0, 1] gives ``wrong + s·(correct − wrong)``; no answer gives ``no_answer``.
    """

    __pydantic_config__ = {"extra": "forbid"}  # validated as a spec field: unknown keys are errors
    correct: float = 1.0
    wrong: float = 0.0
    no_answer: float = 0.0


@runtime_checkable
class Verifier(Protocol):
    """What the engine needs from a verifier: a ``check`` per job, a cache key, and whether to isolate it.
    Optional: ``warm_up()`` (slow imports, run off any item's clock) and ``needs_warm_up(job)``."""

    isolate: bool

    def check(self, job: Job) -> Verdict: ...

    @property
    def cache_key(self) -> str: ...
