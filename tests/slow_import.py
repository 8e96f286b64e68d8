"""A verifier module that takes seconds to import (like one importing sympy on a loaded machine);
importable by worker processes, which import it when they unpickle the verifier."""

from __future__ import annotations

import time

from rewardsmith.verifiers.base import OK, Job, Verdict, Verifier

IMPORT_S = 1.5
time.sleep(IMPORT_S)


class SlowImportVerifier(Verifier):
    name = "slow_import"

    def extract(self, completion: str) -> str | None:
        return completion

    def check(self, job: Job) -> Verdict:
        return Verdict(1.0 if job.prediction == job.reference else 0.0, OK)
