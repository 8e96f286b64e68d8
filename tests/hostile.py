"""Verifiers that misbehave on purpose, for engine tests (importable by worker processes)."""

from __future__ import annotations

import os
import time

from rewardsmith.verifiers.base import OK, TIMEOUT, Job, Verdict, Verifier


class HostileVerifier(Verifier):
    """``hang`` sleeps forever, ``crash`` kills its process, ``raise`` raises; else exact match."""

    name = "hostile"

    def extract(self, completion: str) -> str | None:
        return completion or None

    def check(self, job: Job) -> Verdict:
        if job.prediction == "hang":
            time.sleep(3600)
        if job.prediction == "crash":
            os._exit(13)
        if job.prediction == "raise":
            raise RuntimeError("verifier bug")
        if job.prediction.startswith("sleep"):
            time.sleep(float(job.prediction[5:]))
        return Verdict(1.0 if job.prediction == job.reference else 0.0, OK)


class CountingVerifier(HostileVerifier):
    """In-process (not isolated) variant to count how often ``check`` runs."""

    isolate = False
    calls = 0

    def check(self, job: Job) -> Verdict:
        type(self).calls += 1
        return super().check(job)


class SlowLoadingVerifier(HostileVerifier):
    """:class:`HostileVerifier` whose dependencies take ``load_s`` seconds to load (like math-verify + sympy on a busy machine)."""

    name = "slow_loading"
    load_s = 1.5

    def warm_up(self) -> None:
        time.sleep(self.load_s)


class SometimesSlowLoadingVerifier(SlowLoadingVerifier):
    """:class:`SlowLoadingVerifier` whose warm-up only jobs predicting ``sym...`` need (as math's
    ``needs_warm_up``)."""

    name = "sometimes_slow_loading"

    def needs_warm_up(self, job: Job) -> bool:
        return job.prediction.startswith("sym")


class FlakyTimeoutVerifier(HostileVerifier):
    """In-process verifier whose first check runs out of time (a loaded machine), later ones answer."""

    name = "flaky_timeout"
    isolate = False
    calls = 0

    def check(self, job: Job) -> Verdict:
        type(self).calls += 1
        if type(self).calls == 1:
            return Verdict(float("nan"), TIMEOUT, "own time limit")
        return super().check(job)
