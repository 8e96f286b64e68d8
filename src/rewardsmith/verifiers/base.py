"""The verifier interface.

A verifier works in two halves so the expensive half can run isolated:
``extract`` (cheap, in the calling process) pulls the candidate answer out of a completion;
``check`` (in a worker process with a hard timeout when ``isolate`` is true) compares it with
the reference and returns a :class:`Verdict`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..registry import Component
from ..types import BAD_REFERENCE, ERROR, JUDGE_FAILED, NO_ANSWER, OK, TIMEOUT, Job, Verdict

__all__ = ["BAD_REFERENCE", "ERROR", "JUDGE_FAILED", "NO_ANSWER", "OK", "TIMEOUT", "Job", "Verdict", "Verifier"]


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

    def warm_up(self) -> None:
        """Load what ``check`` needs (slow imports, parsers); the engine runs it off any item's clock."""

    def needs_warm_up(self, job: Job) -> bool:
        """Whether checking ``job`` needs :meth:`warm_up` first (False: decided without the slow imports)."""
        return True

    @property
    def cache_key(self) -> str:
        return f"{self.name}:{json.dumps(self.options.model_dump(), sort_keys=True, default=str)}"
