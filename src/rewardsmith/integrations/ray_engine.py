"""Scoring at cluster scale on Ray (``rewardsmith score --engine ray [--address ...]``).

Verification — the expensive, embarrassingly parallel, per-rollout part — is spread over a pool
of Ray actors, each running its own :class:`~rewardsmith.engine.VerificationEngine` (one worker
process with the same hard timeout, so a hanging input costs one actor ``timeout_s``, not the
run). The driver is a :class:`VerificationEngine` too: it deduplicates and keeps the LRU cache,
so identical answers are verified once across the whole cluster and across batches, and
cheap verifiers that are not isolated (``exact``, ``choice``, ...) run on the driver, where
shipping them would cost more than checking them. Chunks of unique jobs go to whichever actor
is free. Shaping, state updates and advantages then run on the driver over the whole batch,
exactly as with the local engine: a group is never split for shaping (actors never see groups),
there is one state, and results — stateful shapers included — are identical to ``--engine local``.

The pool adapts to the batch: a batch of ``u`` unique jobs uses ``ceil(u / 16)`` actors at most
(a small batch is a few chunks, not one tiny call per actor), actors start on first need and
are spread over the nodes, and chunks are sized so every actor used gets about four of them.
``node_items`` counts the items verified on each node (Ray node id).

Point it at a cluster with ``address="auto"`` (inside a cluster node) or
``"ray://head:10001"``; every node needs rewardsmith installed (or pass it in the cluster's
``runtime_env``). Without an address a local Ray instance is started.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..engine import EngineStats, VerificationEngine, describe_verifier, ensure_portable
from ..pipeline import Pipeline, load_spec
from ..spec import parse_spec
from ..types import Job, Verdict, Verifier

_MIN_CHUNK = 16  # unique jobs per actor call at least: below that a Ray round trip costs more than the work
_MAX_CHUNK = 256  # and at most, so a slow chunk does not hold the tail of the batch
_CHUNKS_PER_ACTOR = 4  # chunks per actor used, so a slow chunk is balanced by the others
_IN_FLIGHT = 2  # calls queued per actor, so an actor never idles between chunks
_COUNTED = ("checked", "timeouts", "errors", "workers_replaced")


def plan_chunks(n_unique: int, n_actors: int) -> tuple[int, int]:
    """(actors to use, jobs per chunk) for a batch of ``n_unique`` jobs on at most ``n_actors``."""
    if n_unique <= 0:
        return 0, 0
    use = max(1, min(n_actors, -(-n_unique // _MIN_CHUNK)))
    size = -(-n_unique // (use * _CHUNKS_PER_ACTOR))
    return use, max(_MIN_CHUNK, min(_MAX_CHUNK, size))


class _VerifyActor:
    def __init__(self, timeout_s: float):
        import ray

        self.engine = VerificationEngine(workers=1, timeout_s=timeout_s, cache_size=0)  # the driver caches
        self.node_id = ray.get_runtime_context().get_node_id()

    def run(self, verifier: Verifier, jobs: list[Job]) -> tuple[str, list[Verdict | None], EngineStats]:
        before = dataclasses.replace(self.engine.stats)
        verdicts = self.engine.run(verifier, jobs)
        after = self.engine.stats
        delta = EngineStats(
            **{k: getattr(after, k) - getattr(before, k) for k in _COUNTED},
            slowest_s=after.slowest_s,
        )
        return self.node_id, verdicts, delta


class RayVerificationEngine(VerificationEngine):
    """Drop-in for :class:`VerificationEngine` that verifies isolated jobs on a pool of Ray actors.

    ``workers``: actors at most (default: the cluster's CPUs); ``address``: the cluster to join
    (default: the one this process is connected to, else a new local one).
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 5.0,
        cache_size: int = 100_000,
        address: str | None = None,
    ):
        import ray

        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers or None,
                    include_dashboard=False,
                    log_to_driver=False,
                )
        super().__init__(
            workers or max(1, int(ray.cluster_resources().get("CPU", 1))),
            timeout_s,
            cache_size,
        )
        self._remote = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_VerifyActor)
        self._actors: list[Any] = []
        self.node_items: Counter[str] = Counter()  # items verified per Ray node id
        self._actors_lock = threading.Lock()

    def _run_isolated(
        self,
        verifier: Verifier,
        unique: list[tuple[str, Job]],
        deliver: Callable[[str, Verdict], None],
    ) -> None:
        # Calls from several threads take turns on the actors (the local engine's calls share its pool instead).
        with self._actors_lock:
            self._run_on_actors(verifier, unique, deliver)

    def _run_on_actors(
        self,
        verifier: Verifier,
        unique: list[tuple[str, Job]],
        deliver: Callable[[str, Verdict], None],
    ) -> None:
        import ray

        if verifier.isolate:  # Ray would carry a __main__ verifier to the actors, but not to their engines' workers
            ensure_portable(verifier, describe_verifier(verifier))
        use, size = plan_chunks(len(unique), self.n_workers)
        if not unique:
            return
        while len(self._actors) < use:
            self._actors.append(self._remote.remote(self.timeout_s))
        queue = [unique[k : k + size] for k in range(0, len(unique), size)][::-1]
        verifier_ref = ray.put(verifier)
        pending: dict[Any, tuple[Any, list[tuple[str, Job]]]] = {}
        replaced: dict[Any, Any] = {}  # dead actor -> its replacement (its other calls fail too)
        deaths = 0

        def submit(actor: Any) -> None:
            if queue:
                chunk = queue.pop()
                pending[actor.run.remote(verifier_ref, [job for _, job in chunk])] = (
                    actor,
                    chunk,
                )

        for _ in range(_IN_FLIGHT):  # round-robin: every actor used has work before any has two chunks
            for actor in self._actors[:use]:
                submit(actor)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, chunk = pending.pop(done[0])
            try:
                node, verdicts, stats = ray.get(done[0])
            except ray.exceptions.RayActorError:  # node lost or actor killed: its chunks go to a new actor
                deaths += 1
                if deaths > 3 * use:
                    raise RuntimeError("Ray verification actors keep dying; see the cluster's logs") from None
                queue.append(chunk)
                if actor not in replaced:
                    replaced[actor] = self._remote.remote(self.timeout_s)
                    self._actors[self._actors.index(actor)] = replaced[actor]
                submit(replaced[actor])
                continue
            submit(actor)
            self._merge(stats)
            self.node_items[node] += len(chunk)
            for (key, _), verdict in zip(chunk, verdicts):
                deliver(key, verdict)  # type: ignore[arg-type]  # the actor got no None job

    def _merge(self, stats: EngineStats) -> None:
        for k in _COUNTED:
            setattr(self.stats, k, getattr(self.stats, k) + getattr(stats, k))
        self.stats.slowest_s = max(self.stats.slowest_s, stats.slowest_s)

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


def score_records_ray(
    spec: Any,
    records: list[dict[str, Any]],
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score ``records`` with verification on Ray; returns (scored records in input order, summary).

    ``spec``: a path, dict, Spec or Pipeline (a Pipeline's State is shared, so it sees the
    update; its own engine is left untouched). The summary is :meth:`Scores.summary` plus
    ``ray_workers`` and ``ray_node_items`` (items verified per Ray node id).
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
    summary["ray_node_items"] = dict(engine.node_items)
    return scores.to_records(records), summary
