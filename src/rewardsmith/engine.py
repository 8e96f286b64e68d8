"""Verification engine: worker processes with a hard wall-clock timeout per item.

Why processes: math-verify's own timeouts use ``signal.alarm`` (main thread only) and some
inputs hang regardless (Math-Verify #65). Here every isolated ``check`` runs in a worker
process; the parent watches each item's clock and kills a worker that overruns, scoring its item
``timeout`` and starting a replacement, so one hostile input can never stall a run. An item's
clock starts only when its worker is ready for it: interpreter start-up, unpickling the verifier
(importing its module) and :meth:`Verifier.warm_up` (importing math-verify and sympy; run before
the first job that :meth:`Verifier.needs_warm_up`, so a batch that never needs sympy never loads
it) run under the start-up limit instead. Identical jobs are verified once per batch and
remembered in an LRU cache across batches; unknown verdicts (``timeout``, ``error``) are never
cached, so a rerun on a less loaded machine gets a real verdict.

The engine is safe to call from any thread (calls are serialised by a lock), from asyncio
(``await engine.arun(...)``) and inside Ray workers (workers are fresh interpreters started
with ``subprocess``; the caller's ``__main__`` is never re-imported).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from .types import ERROR, JUDGE_FAILED, TIMEOUT, Job, Verdict, Verifier

_CHUNK = 8  # items sent to a worker at once; each result comes back as soon as it is ready
_STARTUP_S = 120.0  # a worker that has not said it is ready by then is a broken environment
_READY = "ready"
_LOADED = "loaded"  # the worker has loaded a verifier (or finished its warm-up): item clocks start now
_WARMING = "warming"  # the worker is running the verifier's warm-up: the start-up limit applies


def _worker_main(fd: int) -> None:
    """Worker loop: receive ``(verifier, [(task_id, job), ...])``, answer one result per job."""
    import logging

    logging.disable(logging.WARNING)  # math-verify logs every timeout/parse failure
    parent = os.getppid()

    def orphan_watch() -> None:  # a worker stuck in ``check`` must not outlive its parent
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=orphan_watch, daemon=True).start()
    conn = Connection(fd)
    conn.send(_READY)
    warmed: dict[str, bool] = {}  # verifier cache key -> warm-up done
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        verifier, tasks = msg
        key = verifier.cache_key
        try:
            if key not in warmed:
                warmed[key] = False
                conn.send(_LOADED)
            for task_id, job in tasks:
                if not warmed[key] and _wants_warm_up(verifier, job):
                    conn.send(_WARMING)
                    try:
                        verifier.warm_up()  # type: ignore[attr-defined]  (present: _wants_warm_up checked)
                    except Exception:  # a broken import shows up again, per item, in ``check``
                        pass
                    warmed[key] = True
                    conn.send(_LOADED)
                conn.send((task_id, _check(verifier, job)))
        except (EOFError, OSError, BrokenPipeError):
            return


def _wants_warm_up(verifier: Verifier, job: Job) -> bool:
    """Whether to run the verifier's optional ``warm_up`` before ``job`` (``needs_warm_up``, default yes)."""
    if not callable(getattr(verifier, "warm_up", None)):
        return False
    needs = getattr(verifier, "needs_warm_up", None)
    try:
        return True if needs is None else bool(needs(job))
    except Exception:
        return True


def _check(verifier: Verifier, job: Job) -> Verdict:
    try:
        return verifier.check(job)
    except Exception as exc:  # a verifier bug scores the item, it does not kill the run
        return Verdict(float("nan"), ERROR, f"{type(exc).__name__}: {exc}"[:500])


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: Connection
    inflight: deque  # task ids sent and not yet answered, in order
    ready: bool = False  # the worker has started and said so
    started: float = 0.0  # when the item at the head of ``inflight`` started (or warm-up began)
    loaded: set = field(default_factory=set)  # verifier cache keys this worker has unpickled
    warming: bool = False  # loading or warming up a verifier: its clock is the start-up limit, not an item's timeout


@dataclass
class EngineStats:
    checked: int = 0  # jobs actually verified (after dedupe and cache)
    cache_hits: int = 0
    deduped: int = 0
    timeouts: int = 0
    errors: int = 0
    workers_replaced: int = 0
    slowest_s: float = 0.0


class VerificationEngine:
    """Runs verifier jobs with dedupe, an LRU cache and (for isolated verifiers) a process pool.

    ``workers``: processes (default: the machine's cores). ``timeout_s``: hard wall-clock limit
    per item. ``cache_size``: verdicts remembered across batches (0 disables the cache).
    """

    def __init__(self, workers: int | None = None, timeout_s: float = 5.0, cache_size: int = 100_000):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.n_workers = workers or os.cpu_count() or 1
        self.timeout_s = float(timeout_s)
        self.cache_size = int(cache_size)
        self.stats = EngineStats()
        self._cache: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._workers: list[_Worker] = []
        self._lock = threading.RLock()
        self._pid = os.getpid()
        _ENGINES.add(self)

    # ----------------------------------------------------------------- public API
    def run(
        self, verifier: Verifier, jobs: Sequence[Job | None], progress: Callable[[int], None] | None = None
    ) -> list[Verdict | None]:
        """Verdicts for ``jobs`` in order (None where the job is None)."""
        with self._lock:
            return self._run(verifier, jobs, progress)

    async def arun(self, verifier: Verifier, jobs: Sequence[Job | None]) -> list[Verdict | None]:
        """The same as :meth:`run` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.run, verifier, jobs)

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                self._stop(w, graceful=True)
            self._workers = []

    def __enter__(self) -> VerificationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # An engine travels (Ray, TRL's async workers) as its settings; processes start on demand.
        return {"n_workers": self.n_workers, "timeout_s": self.timeout_s, "cache_size": self.cache_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["n_workers"], state["timeout_s"], state["cache_size"])

    # ----------------------------------------------------------------- internals
    def _run(
        self, verifier: Verifier, jobs: Sequence[Job | None], progress: Callable[[int], None] | None
    ) -> list[Verdict | None]:
        if os.getpid() != self._pid:  # forked copy: never talk to the parent's workers
            self.__init__(self.n_workers, self.timeout_s, self.cache_size)
        results: list[Verdict | None] = [None] * len(jobs)
        vkey = verifier.cache_key
        pending: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            if job is None:
                continue
            key = job.key
            cached = self._cache_get((vkey, key))
            if cached is not None:
                results[i] = cached
                self.stats.cache_hits += 1
            elif key in pending:
                pending[key].append(i)
                self.stats.deduped += 1
            else:
                pending[key] = [i]
        done_now = sum(r is not None for r in results)
        if progress and done_now:
            progress(done_now)
        unique = [(key, jobs[idx[0]]) for key, idx in pending.items()]

        def deliver(key: str, verdict: Verdict) -> None:
            if verdict.status not in (ERROR, TIMEOUT, JUDGE_FAILED):  # unknown is not a verdict to remember
                self._cache_put((vkey, key), verdict)
            for i in pending[key]:
                results[i] = verdict
            if progress:
                progress(len(pending[key]))

        if verifier.isolate:
            self._run_isolated(verifier, unique, deliver)
        elif hasattr(verifier, "check_batch"):  # model-backed: one batched (async) call for the batch
            if unique:
                self._run_batched(verifier, unique, deliver)
        else:
            for key, job in unique:
                t0 = time.perf_counter()
                try:
                    verdict = verifier.check(job)
                except Exception as exc:
                    verdict = Verdict(float("nan"), ERROR, f"{type(exc).__name__}: {exc}"[:500])
                self._note(verdict, time.perf_counter() - t0)
                deliver(key, verdict)
        return results

    def _run_batched(
        self, verifier: Verifier, unique: list[tuple[str, Job]], deliver: Callable[[str, Verdict], None]
    ) -> None:
        t0 = time.perf_counter()
        try:
            verdicts = verifier.check_batch([job for _, job in unique])  # type: ignore[attr-defined]
        except Exception as exc:  # a scorer bug scores the batch unknown, it does not kill the run
            verdicts = [Verdict(float("nan"), ERROR, f"{type(exc).__name__}: {exc}"[:500])] * len(unique)
        for (key, _), verdict in zip(unique, verdicts):
            self._note(verdict, (time.perf_counter() - t0) / len(unique))
            deliver(key, verdict)

    def _note(self, verdict: Verdict, seconds: float) -> None:
        self.stats.checked += 1
        self.stats.slowest_s = max(self.stats.slowest_s, seconds)
        if verdict.status == TIMEOUT:
            self.stats.timeouts += 1
        elif verdict.status == ERROR:
            self.stats.errors += 1

    def _run_isolated(
        self, verifier: Verifier, unique: list[tuple[str, Job]], deliver: Callable[[str, Verdict], None]
    ) -> None:
        vkey = verifier.cache_key
        queue = deque(range(len(unique)))
        want = min(self.n_workers, max(1, len(unique)))
        while len(self._workers) < want:
            self._workers.append(self._spawn())
        busy: dict[int, _Worker] = {}  # id(conn) -> worker with work in flight
        startup_failures = 0

        def dispatch(w: _Worker) -> None:
            n = min(_CHUNK, max(1, len(queue) // len(self._workers)))
            tasks = [queue.popleft() for _ in range(min(n, len(queue)))]
            try:
                w.conn.send((verifier, [(t, unique[t][1]) for t in tasks]))
            except (OSError, BrokenPipeError):
                queue.extendleft(reversed(tasks))
                self._replace(w)
                return
            w.inflight.extend(tasks)
            w.started = time.perf_counter()
            w.warming = vkey not in w.loaded
            busy[id(w.conn)] = w

        def fail_head(w: _Worker, verdict: Verdict, seconds: float) -> None:
            # The item at the head of ``w``'s queue is lost with the worker; the rest go back.
            head = w.inflight.popleft()
            self._note(verdict, seconds)
            deliver(unique[head][0], verdict)
            queue.extendleft(reversed(w.inflight))
            busy.pop(id(w.conn), None)
            self._replace(w)

        while queue or busy:
            for w in list(self._workers):
                if queue and w.ready and id(w.conn) not in busy:
                    dispatch(w)
            watched = [w for w in self._workers if id(w.conn) in busy or not w.ready]
            if not watched:
                continue
            now = time.perf_counter()
            limit = min(self._deadline(w) for w in busy.values()) - now if busy else _STARTUP_S
            ready = wait([w.conn for w in watched], timeout=max(0.0, limit))
            if not ready and not busy:
                raise RuntimeError(f"verifier worker processes did not start within {_STARTUP_S:g}s")
            by_conn = {id(w.conn): w for w in watched}
            for conn in ready:
                w = by_conn[id(conn)]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # died: crash, OOM kill, os._exit inside a verifier
                    if w.inflight:
                        fail_head(
                            w, Verdict(float("nan"), ERROR, "worker process died"), time.perf_counter() - w.started
                        )
                    else:
                        startup_failures += 1
                        if startup_failures > 3 * self.n_workers:
                            raise RuntimeError("verifier worker processes keep dying at start-up") from None
                        self._replace(w)
                    continue
                if msg == _READY:
                    w.ready = True
                    continue
                if msg == _LOADED:
                    w.warming = False
                    w.loaded.add(vkey)
                    w.started = time.perf_counter()
                    continue
                if msg == _WARMING:
                    w.warming = True
                    w.started = time.perf_counter()
                    continue
                task_id, verdict = msg
                t_end = time.perf_counter()
                w.inflight.popleft()
                self._note(verdict, t_end - w.started)
                deliver(unique[task_id][0], verdict)
                w.started = t_end
                if not w.inflight:
                    del busy[id(conn)]
            now = time.perf_counter()
            for w in [w for w in busy.values() if now >= self._deadline(w)]:
                if w.warming:
                    raise RuntimeError(f"a verifier worker did not load {verifier.name!r} within {_STARTUP_S:g}s")
                fail_head(w, Verdict(float("nan"), TIMEOUT, f"no answer within {self.timeout_s:g}s"), now - w.started)

    def _deadline(self, w: _Worker) -> float:
        return w.started + (_STARTUP_S if w.warming else self.timeout_s)

    def _spawn(self) -> _Worker:
        # A fresh interpreter, not multiprocessing's spawn/forkserver: those re-run the caller's
        # __main__ (breaks under stdin/REPL and unguarded scripts) and fork is unsafe with threads.
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from rewardsmith.engine import _worker_main; _worker_main({theirs.fileno()})"],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        return _Worker(proc, Connection(ours.detach()), deque())

    def _replace(self, w: _Worker) -> _Worker:
        self._stop(w, graceful=False)
        fresh = self._spawn()
        self._workers[self._workers.index(w)] = fresh
        self.stats.workers_replaced += 1
        return fresh

    @staticmethod
    def _stop(w: _Worker, graceful: bool) -> None:
        try:
            if graceful and w.process.poll() is None:
                w.conn.send(None)
                w.process.wait(timeout=1.0)
        except (OSError, BrokenPipeError, subprocess.TimeoutExpired):
            pass
        if w.process.poll() is None:
            w.process.kill()
            w.process.wait(timeout=5.0)
        w.conn.close()

    def _cache_get(self, key: tuple[str, str]) -> Verdict | None:
        if not self.cache_size:
            return None
        v = self._cache.get(key)
        if v is not None:
            self._cache.move_to_end(key)
        return v

    def _cache_put(self, key: tuple[str, str], verdict: Verdict) -> None:
        if not self.cache_size:
            return
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


_ENGINES: weakref.WeakSet[VerificationEngine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_ENGINES):
        try:
            engine.close()
        except Exception:
            pass
