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
with ``subprocess``; the caller's ``__main__`` is never re-imported). An isolated verifier with
``check_batch`` is called once per chunk of jobs; when such a call overruns its time (the chunk's
items × ``timeout_s``) or kills its worker, the chunk's items are retried one per call, so only
the item that hangs is scored ``timeout``. A verifier the workers cannot load (defined in
``__main__``, unpicklable, its module not importable there) is a :class:`SpecError` naming it.

``check_batch`` protocol (one meaning, one verdict per job, two places, chosen by ``isolate``):
an isolated verifier's ``check_batch`` runs per chunk inside the workers as above; a non-isolated
verifier that has it (the model-backed scorers ``judge`` and ``reward_model``: network or model
calls with their own timeouts, retries and budgets) is called once in the parent with all the
batch's unique jobs, so it can batch or run them concurrently; its exception scores the batch
``error``. Unknown model judgements (``judge_failed``) are never cached, like ``timeout``/``error``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from types import FunctionType

from .registry import SpecError
from .types import ERROR, JUDGE_FAILED, TIMEOUT, Job, Verdict, Verifier

_CHUNK = 8  # items sent to a worker at once; each result comes back as soon as it is ready
_STARTUP_S = 120.0  # a worker that has not said it is ready by then is a broken environment
_READY = "ready"
_LOADED = "loaded"  # the worker has loaded a verifier (or finished its warm-up): item clocks start now
_WARMING = "warming"  # the worker is running the verifier's warm-up: the start-up limit applies
_LOAD_ERROR = "load-error"  # a worker could not unpickle what it was sent


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
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            msg = pickle.loads(data)
        except Exception as exc:  # e.g. the verifier's module cannot be imported here: the parent says so
            conn.send((_LOAD_ERROR, f"{type(exc).__name__}: {exc}"))
            continue
        if msg is None:
            return
        verifier, tasks = msg
        key = verifier.cache_key
        try:
            if key not in warmed:
                warmed[key] = False
                conn.send(_LOADED)
            if hasattr(verifier, "check_batch"):  # one call for the chunk (a TRL-style reward function)
                for (task_id, _), verdict in zip(tasks, _verdicts(verifier, [job for _, job in tasks])):
                    conn.send((task_id, verdict))
                continue
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
        return _error(exc)


def _error(exc: Exception) -> Verdict:
    return Verdict(float("nan"), ERROR, f"{type(exc).__name__}: {exc}"[:500])


def _verdicts(verifier: Verifier, jobs: list[Job]) -> Iterator[Verdict]:
    """One verdict per job, each as soon as it is ready: ``check_batch`` once when the verifier has
    it, else ``check`` per job. A verifier's exception scores its items ``error``, never ends the run."""
    check_batch = getattr(verifier, "check_batch", None)
    if not jobs:
        return
    if check_batch is None:
        for job in jobs:
            yield _check(verifier, job)
        return
    try:
        verdicts = list(check_batch(jobs))
        if len(verdicts) != len(jobs):
            raise ValueError(f"check_batch returned {len(verdicts)} verdicts for {len(jobs)} jobs")
    except Exception as exc:
        verdicts = [_error(exc)] * len(jobs)
    yield from verdicts


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: Connection
    inflight: deque  # task ids sent and not yet answered, in order
    ready: bool = False  # the worker has started and said so
    started: float = 0.0  # when the item at the head of ``inflight`` started (or warm-up began)
    loaded: set = field(default_factory=set)  # verifier cache keys this worker has unpickled
    warming: bool = False  # loading or warming up a verifier: its clock is the start-up limit, not an item's timeout
    budget: float = 0.0  # seconds the items in flight may take: timeout_s, or that per item of a check_batch call


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
        else:
            t0 = time.perf_counter()
            for (key, _), verdict in zip(unique, _verdicts(verifier, [job for _, job in unique])):
                self._note(verdict, time.perf_counter() - t0)
                deliver(key, verdict)
                t0 = time.perf_counter()
        return results

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
        ensure_portable(verifier, describe_verifier(verifier))
        batched = hasattr(verifier, "check_batch")
        alone: set[int] = set()  # items of a failed check_batch call: retried one per call
        vkey = verifier.cache_key
        queue = deque(range(len(unique)))
        want = min(self.n_workers, max(1, len(unique)))
        while len(self._workers) < want:
            self._workers.append(self._spawn())
        busy: dict[int, _Worker] = {}  # id(conn) -> worker with work in flight
        startup_failures = 0

        def dispatch(w: _Worker) -> None:
            n = min(_CHUNK, max(1, len(queue) // len(self._workers)))
            tasks = [queue.popleft()]
            while len(tasks) < n and queue and tasks[0] not in alone and queue[0] not in alone:
                tasks.append(queue.popleft())
            try:
                w.conn.send((verifier, [(t, unique[t][1]) for t in tasks]))
            except (OSError, BrokenPipeError):
                queue.extendleft(reversed(tasks))
                self._replace(w)
                return
            w.inflight.extend(tasks)
            w.started = time.perf_counter()
            w.budget = self.timeout_s * (len(tasks) if batched else 1)
            w.warming = vkey not in w.loaded
            busy[id(w.conn)] = w

        def fail_head(w: _Worker, verdict: Verdict, seconds: float) -> None:
            # The item at the head of ``w``'s queue is lost with the worker; the rest go back.
            if batched and len(w.inflight) > 1:  # one call for all of them: which one failed is unknown
                alone.update(w.inflight)
                queue.extendleft(reversed(w.inflight))
                busy.pop(id(w.conn), None)
                self._replace(w)
                return
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
                if msg[0] == _LOAD_ERROR:
                    self.close()  # other workers' answers would arrive in a later run
                    raise SpecError(
                        f"{describe_verifier(verifier)} cannot be loaded in a verification worker "
                        f"(a fresh Python process): {msg[1]}; define it in a module the workers can import"
                    )
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
        return w.started + (_STARTUP_S if w.warming else w.budget)

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


def describe_verifier(verifier: Verifier) -> str:
    cls = type(verifier)
    return f"verifier {verifier.name or cls.__qualname__!r} ({cls.__module__}.{cls.__qualname__})"


class _PortablePickler(pickle.Pickler):
    """Pickles like the engine does, refusing references into ``__main__``: a worker's ``__main__``
    is not the caller's script, so such a reference pickles here and fails there."""

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, (type, FunctionType)) and getattr(obj, "__module__", None) == "__main__":
            raise SpecError(
                f"{obj.__qualname__} is defined in __main__ (the script being run), which worker processes "
                f"cannot import; move it to a module on PYTHONPATH and name it by import path "
                f"('module:{obj.__qualname__}')"
            )
        return NotImplemented


def ensure_portable(obj: object, what: str) -> None:
    """Raise :class:`SpecError` naming ``what`` unless ``obj`` survives the trip to a worker process:
    it pickles, unpickles, and refers to nothing defined in ``__main__``."""
    import io

    buffer = io.BytesIO()
    try:
        _PortablePickler(buffer).dump(obj)
        pickle.loads(buffer.getvalue())
    except SpecError as exc:
        raise SpecError(f"{what} cannot be sent to verification workers: {exc}") from None
    except Exception as exc:
        raise SpecError(
            f"{what} cannot be sent to verification workers (fresh Python processes): it does not pickle "
            f"({type(exc).__name__}: {exc}); define it at the top level of an importable module"
        ) from None


_ENGINES: weakref.WeakSet[VerificationEngine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_ENGINES):
        try:
            engine.close()
        except Exception:
            pass
