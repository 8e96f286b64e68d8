"""Scoring at cluster scale on Ray (``rewardsmith score --engine ray [--address ...]``).

Verification — the expensive, embarrassingly parallel, per-rollout part — is spread over a pool
of Ray actors, each running its own :class:`~rewardsmith.engine.VerificationEngine` (one worker
process with the same hard timeout, so a hanging input costs one actor ``timeout_s``, not the
run). Deduplication happens on the driver first, so identical answers are verified once across
the whole cluster; chunks of unique jobs go to whichever actor is free. Shaping, state updates
and advantages then run on the driver over the whole batch, exactly as with the local engine:
a group is never split for shaping (actors never see groups), there is one state, and results —
stateful shapers included — are identical to ``--engine local``.

Point it at a cluster with ``address="auto"`` (inside a cluster node) or
``"ray://head:10001"``; every node needs rewardsmith installed (or pass it in the cluster's
``runtime_env``). Without an address a local Ray instance is started.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from ..engine import VerificationEngine, describe_verifier, ensure_portable
from ..pipeline import Pipeline, load_spec
from ..spec import parse_spec
from ..types import Job, Verdict, Verifier

_MAX_CHUNK = 256  # unique jobs per actor call
_CHUNKS_PER_ACTOR = 4  # smaller chunks for small batches, so every actor gets work
_IN_FLIGHT = 2  # calls queued per actor, so an actor never idles between chunks


class _VerifyActor:
    def __init__(self, timeout_s: float, cache_size: int):
        self.engine = VerificationEngine(workers=1, timeout_s=timeout_s, cache_size=cache_size)

    def run(self, verifier: Verifier, jobs: list[Job]) -> list[Verdict | None]:
        return self.engine.run(verifier, jobs)


class RayVerificationEngine:
    """Drop-in for :class:`VerificationEngine` that verifies on a pool of Ray actors."""

    def __init__(self, workers: int | None = None, timeout_s: float = 5.0, cache_size: int = 100_000, address: str | None = None):
        import ray

        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False)
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1)(_VerifyActor)
        self._actors = [remote.remote(timeout_s, cache_size) for _ in range(n)]
        self.n_workers, self.timeout_s = n, timeout_s

    def run(self, verifier: Verifier, jobs: Sequence[Job | None], progress: Callable[[int], None] | None = None) -> list[Verdict | None]:
        import ray

        if verifier.isolate:  # Ray would carry a __main__ verifier to the actors, but not to their engines' workers
            ensure_portable(verifier, describe_verifier(verifier))
        unique: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            if job is not None:
                unique.setdefault(job.key, []).append(i)
        keys = list(unique)
        size = max(1, min(_MAX_CHUNK, -(-len(keys) // (len(self._actors) * _CHUNKS_PER_ACTOR))))
        queue = [keys[k:k + size] for k in range(0, len(keys), size)][::-1]
        verifier_ref = ray.put(verifier)
        pending: dict[Any, tuple[Any, list[str]]] = {}

        def submit(actor: Any) -> None:
            if queue:
                chunk = queue.pop()
                pending[actor.run.remote(verifier_ref, [jobs[unique[key][0]] for key in chunk])] = (actor, chunk)

        for actor in self._actors:
            for _ in range(_IN_FLIGHT):
                submit(actor)
        results: list[Verdict | None] = [None] * len(jobs)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, chunk = pending.pop(done[0])
            submit(actor)
            for key, verdict in zip(chunk, ray.get(done[0])):
                for i in unique[key]:
                    results[i] = verdict
                if progress:
                    progress(len(unique[key]))
        return results

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


def score_records_ray(spec: Any, records: list[dict[str, Any]], workers: int | None = None, address: str | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score ``records`` with verification on Ray; returns (scored records in input order, summary).

    ``spec``: a path, dict, Spec or Pipeline (a Pipeline's State is shared, so it sees the
    update; its own engine is left untouched). The summary is :meth:`Scores.summary` plus ``ray_workers``.
    """
    given = spec if isinstance(spec, Pipeline) else None
    parsed = given.spec if given else parse_spec(spec)
    engine = RayVerificationEngine(workers, parsed.timeout_s, parsed.cache_size, address)
    pipe = given.with_engine(engine) if given else load_spec(parsed, engine=engine)
    t0 = time.perf_counter()
    try:
        scores = pipe.score(records, progress=progress)
    finally:
        pipe.close()
    summary = scores.summary()
    summary["seconds"] = time.perf_counter() - t0
    summary["ray_workers"] = engine.n_workers
    return scores.to_records(records), summary
