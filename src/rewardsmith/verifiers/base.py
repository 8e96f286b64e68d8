"""The verifier interface.

A verifier works in two halves so the expensive half can run isolated:
``extract`` (cheap, in the calling process) pulls the candidate answer out of a completion;
``check`` (in a worker process with a hard timeout when ``isolate`` is true) compares it with
the reference and returns a :class:`Verdict`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..registry import Component

# Verdict statuses; "timeout" and "error" are set by the engine, never by a verifier.
OK, NO_ANSWER, BAD_REFERENCE, TIMEOUT, ERROR = "ok", "no_answer", "bad_reference", "timeout", "error"


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


class Verifier(Component):
    isolate: ClassVar[bool] = True  # run ``check`` in a worker process with a hard timeout

    def extract(self, completion: str) -> str | None:
        """The answer found in ``completion``, or None when there is none."""
        raise NotImplementedError

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        """The job to run for one record, or None when there is no answer to check."""
        pred = self.extract(completion)
        return None if pred is None else Job(pred, reference)

    def check(self, job: Job) -> Verdict:
        raise NotImplementedError

    @property
    def cache_key(self) -> str:
        return f"{self.name}:{json.dumps(self.options.model_dump(), sort_keys=True, default=str)}"
