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

The engine is safe to call from any thread, from asyncio (``await engine.arun(...)``) and inside
Ray workers (workers are fresh interpreters started with ``subprocess``; the caller's
``__main__`` is never re-imported). Concurrent calls run together on one pool of ``workers``
processes: a call leases workers while its items wait (its fair share while others run) and hands
each back as soon as it has nothing in flight, so a hanging item holds only the worker it is on
and costs its own call at most ``timeout_s``. A call holding no worker while every worker is
stuck (on one item or a warm-up) for over ``_STUCK_S`` starts its own, so at most ``workers`` plus one per call
in flight processes are alive (``workers`` once no call is). Workers are forked from a template
process that has loaded the verifier (and run its ``warm_up`` once a worker needed it), so
replacing a killed worker takes milliseconds instead of an interpreter start and heavy imports.
A verifier the workers cannot load (defined in ``__main__``, unpicklable, its module not importable
there) is a :class:`SpecError` naming it.

``check_batch`` protocol (one meaning, one verdict per job, two places, chosen by ``isolate``):

- an isolated verifier with ``check_batch`` (a TRL-style reward function) is called once per chunk
  of jobs inside a worker; the chunk's time budget is its items × ``timeout_s``, and a call that
  overruns it or kills its worker has its items retried one per call, so only the item that hangs
  is scored ``timeout``;
- a non-isolated verifier that has it (the model-backed scorers ``judge`` and ``reward_model``:
  network or model calls with their own timeouts, retries and budgets) is called once in the
  parent with all the batch's unique jobs, so it can batch or run them concurrently; its exception
  scores the batch ``error``. Unknown model judgements (``judge_failed``) are never cached either.
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
_LOADED = "loaded"  # (_LOADED, key): the worker has loaded a verifier (or finished its warm-up): item clocks start now
_WARMING = "warming"  # (_WARMING, key): the worker is running the verifier's warm-up: the start-up limit applies
_STUCK_S = 0.25  # this long on one item or a warm-up counts as stuck: a call holding no worker may start its own
_POLL_S = 0.005  # how often a call whose items wait for a worker looks at the pool again
_LOAD_ERROR = "load-error"  # a worker could not unpickle what it was sent


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _watch_parent(engine_pid: int) -> None:
    """Exit when the engine's process is gone (a worker stuck in ``check`` must not outlive it).
    A worker forked by the template outlives the template, not the engine."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent and (parent == engine_pid or not _pid_alive(engine_pid)):
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(fd: int) -> None:
    """A worker started as a fresh interpreter (see :func:`_worker_loop`)."""
    import logging

    logging.disable(logging.WARNING)  # math-verify logs every timeout/parse failure
    _worker_loop(Connection(fd), {}, os.getppid())
    # Told to stop: exit now, not through interpreter shutdown (tearing down sympy's modules takes
    # longer than the engine waits for a graceful stop).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker_loop(conn: Connection, warmed: dict[str, bool], engine_pid: int) -> None:
    """Worker loop: receive ``(verifier, [(task_id, job), ...])``, answer one result per job.
    ``warmed``: verifier cache key -> warm-up done, for the verifiers already loaded (by the template)."""
    _watch_parent(engine_pid)
    conn.send(_READY)
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
                conn.send((_LOADED, key))
            if hasattr(verifier, "check_batch"):  # one call for the chunk (a TRL-style reward function)
                for (task_id, _), verdict in zip(tasks, _verdicts(verifier, [job for _, job in tasks])):
                    conn.send((task_id, verdict))
                continue
            for task_id, job in tasks:
                if not warmed[key] and _wants_warm_up(verifier, job):
                    conn.send((_WARMING, key))
                    _warm_up(verifier)
                    warmed[key] = True
                    conn.send((_LOADED, key))
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


def _warm_up(verifier: Verifier) -> None:
    try:
        verifier.warm_up()  # type: ignore[attr-defined]  (present: _wants_warm_up checked)
    except Exception:  # a broken import shows up again, per item, in ``check``
        pass


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


def _template_main(fd: int) -> None:
    """A template process: it loads verifiers, then forks ready workers on request (milliseconds,
    where a fresh interpreter takes seconds to import math-verify). Requests: ``("load", verifier)``
    → ``(_LOADED, key)``; ``("fork",)`` → the new worker's socket (passed as a file descriptor), then
    its pid; ``("successor", verifier)`` → the same for a new template forked from this one that
    runs the verifier's warm-up and then says ``_READY`` (this one keeps forking meanwhile)."""
    import logging
    import signal

    logging.disable(logging.WARNING)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped by the kernel
    _template_loop(Connection(fd), {}, os.getppid())


def _template_loop(conn: Connection, warmed: dict[str, bool], engine_pid: int) -> None:
    import signal

    _watch_parent(engine_pid)
    fds = socket.socket(fileno=os.dup(conn.fileno()))
    conn.send(_READY)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "load":
            warmed.setdefault(msg[1].cache_key, False)
            conn.send((_LOADED, msg[1].cache_key))
            continue
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                conn.close()
                fds.close()
                os.setsid()
                if msg[0] == "successor":
                    _warm_up(msg[1])
                    _template_loop(Connection(theirs.detach()), {**warmed, msg[1].cache_key: True}, engine_pid)
                else:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    _worker_loop(Connection(theirs.detach()), dict(warmed), engine_pid)
            finally:
                os._exit(0)
        theirs.close()
        socket.send_fds(fds, [b"f"], [ours.fileno()])
        ours.close()
        conn.send(pid)


class _ForkedProcess:
    """The handle of a worker forked by the template (its child, reaped there): enough of Popen's."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        if not _pid_alive(self.pid):
            return -9
        try:  # a zombie (its reaper gone) counts as exited
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                return -9 if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z" else None
        except (OSError, IndexError):
            return None

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(0.005)
        return -9


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: Connection
    inflight: deque  # task ids sent and not yet answered, in order
    ready: bool = False  # the worker has started and said so
    started: float = 0.0  # when the item at the head of ``inflight`` started (or warm-up began)
    loaded: set = field(default_factory=set)  # verifier cache keys this worker has unpickled
    warming: bool = False  # loading or warming up a verifier: its clock is the start-up limit, not an item's timeout
    warmed: set = field(default_factory=set)  # (the template only) verifier cache keys it has warmed up
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
        self._workers: list[_Worker] = []  # every live worker: idle or borrowed by a call in flight
        self._idle: list[_Worker] = []
        self._calls = 0  # calls in flight (for their fair share of the pool)
        self._starting = 0  # workers being spawned, not yet in ``_workers``
        self._template: _Worker | None = None  # forks warm workers (started on the first spawn)
        self._successor: _Worker | None = None  # a template warming a verifier up, to take over when done
        self._warm_keys: set[str] = set()  # verifiers some worker had to warm up: the template warms them too
        self._template_lock = threading.Lock()
        self._lock = threading.RLock()  # guards the pool, the cache and the stats; never held while verifying
        self._pid = os.getpid()
        _ENGINES.add(self)

    # ----------------------------------------------------------------- public API
    def run(
        self, verifier: Verifier, jobs: Sequence[Job | None], progress: Callable[[int], None] | None = None
    ) -> list[Verdict | None]:
        """Verdicts for ``jobs`` in order (None where the job is None)."""
        return self._run(verifier, jobs, progress)

    async def arun(self, verifier: Verifier, jobs: Sequence[Job | None]) -> list[Verdict | None]:
        """The same as :meth:`run` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.run, verifier, jobs)

    def start(self, verifiers: Sequence[Verifier] = ()) -> None:
        """Start the worker processes now (they start on demand otherwise), so that their start-up
        overlaps with whatever the caller does next, such as reading the input or waiting for the
        first request. Each new worker also loads ``verifiers`` (unpickling imports their modules)
        without blocking the caller; a heavy warm-up still waits for the first job that needs it."""
        with self._lock:
            if os.getpid() != self._pid:
                return
            fresh = [
                self._start_process("_worker_main") for _ in range(self.n_workers - len(self._workers) - self._starting)
            ]
            loads = []
            for verifier in verifiers:
                try:
                    loads.append(pickle.dumps((verifier, [])))  # no items: load only
                except Exception:
                    pass  # one that cannot travel is refused, naming it, when it is first run
            for worker in fresh:
                try:
                    for load in loads:
                        worker.conn.send_bytes(load)
                except OSError:
                    pass  # found dead at its first use, and replaced
            self._workers.extend(fresh)
            self._idle.extend(fresh)  # leased like any idle worker (ready ones first)

    def started_workers(self) -> int:
        """Worker processes alive in the pool (started, or starting and not yet ready)."""
        with self._lock:
            return len(self._workers)

    def close(self) -> None:
        """Stop the idle workers and the template (workers of calls in flight stop when their call ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._workers = _without(self._workers, idle)
        for w in idle:
            self._stop(w, graceful=True)
        self._drop_templates()

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
        with self._lock:
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
        else:  # in this process; check_batch (model-backed scorers) once for the batch's unique jobs
            t0 = time.perf_counter()
            for (key, _), verdict in zip(unique, _verdicts(verifier, [job for _, job in unique])):
                self._note(verdict, time.perf_counter() - t0)
                deliver(key, verdict)
                t0 = time.perf_counter()
        return results

    def _note(self, verdict: Verdict, seconds: float) -> None:
        with self._lock:
            self.stats.checked += 1
            self.stats.slowest_s = max(self.stats.slowest_s, seconds)
            if verdict.status == TIMEOUT:
                self.stats.timeouts += 1
            elif verdict.status == ERROR:
                self.stats.errors += 1

    def _lease(self, have: int, want: int, verifier: Verifier) -> list[_Worker]:
        """More workers for a call that holds ``have`` started ones and could use ``want``: idle ones first, then
        new ones while the pool is under ``n_workers``; and for a call holding none while every live
        worker is stuck on a slow item, one beyond the pool (so a hanging item never holds up
        another call for longer than ``_STUCK_S``). A call gets its fair share while others run."""
        now = time.perf_counter()
        with self._lock:
            need = min(want, max(1, self.n_workers // max(1, self._calls))) - have
            if need <= 0:
                return []
            for w in self._idle:
                _read_idle(w)
            key = verifier.cache_key
            self._idle.sort(key=lambda w: (not w.ready, key not in w.loaded))  # started and warm ones first
            taken, self._idle = self._idle[:need], self._idle[need:]
            live = len(self._workers) + self._starting
            spawn = min(need - len(taken), max(0, self.n_workers - live))
            stuck = all(w.inflight and now - w.started > _STUCK_S for w in self._workers)
            if have == 0 and not taken and not spawn and stuck and live < self.n_workers + self._calls:
                spawn = 1
            self._starting += spawn
        fresh: list[_Worker] = []
        try:
            for _ in range(spawn):
                fresh.append(self._spawn(verifier))
        finally:
            with self._lock:
                self._starting -= spawn
                self._workers.extend(fresh)
        return taken + fresh

    def _release(self, workers: list[_Worker], call_ends: bool = False) -> None:
        """Return workers to the pool. Idle ones beyond ``n_workers`` plus one per call in flight
        stop (kept while calls overlap, so steady concurrent load starts no processes)."""
        with self._lock:
            if call_ends:
                self._calls -= 1
            self._idle.extend(workers)
            keep = self.n_workers + self._calls
            extra, self._idle = self._idle[keep:], self._idle[:keep]
            self._workers = _without(self._workers, extra)
        for w in extra:
            self._stop(w, graceful=True)

    def _run_isolated(
        self, verifier: Verifier, unique: list[tuple[str, Job]], deliver: Callable[[str, Verdict], None]
    ) -> None:
        ensure_portable(verifier, describe_verifier(verifier))
        workers: list[_Worker] = []  # leased by this call now: taken while its items wait, returned when it has none
        with self._lock:
            self._calls += 1
        try:
            self._run_on(workers, verifier, unique, deliver)
        finally:
            self._release(workers, call_ends=True)

    def _run_on(
        self,
        workers: list[_Worker],
        verifier: Verifier,
        unique: list[tuple[str, Job]],
        deliver: Callable[[str, Verdict], None],
    ) -> None:
        batched = hasattr(verifier, "check_batch")
        alone: set[int] = set()  # items of a failed check_batch call: retried one per call
        queue = deque(range(len(unique)))
        busy: dict[int, _Worker] = {}  # id(conn) -> worker with work in flight
        startup_failures = 0
        waiting_since: float | None = None  # since when this call's workers are all still starting

        def dispatch(w: _Worker) -> None:
            n = min(_CHUNK, max(1, len(queue) // len(workers)))
            tasks = [queue.popleft()]
            while len(tasks) < n and queue and tasks[0] not in alone and queue[0] not in alone:
                tasks.append(queue.popleft())
            try:
                w.conn.send((verifier, [(t, unique[t][1]) for t in tasks]))
            except (OSError, BrokenPipeError):
                queue.extendleft(reversed(tasks))
                self._replace(w, workers, verifier)
                return
            w.inflight.extend(tasks)
            w.started = time.perf_counter()
            w.budget = self.timeout_s * (len(tasks) if batched else 1)
            w.warming = verifier.cache_key not in w.loaded
            busy[id(w.conn)] = w

        def fail_head(w: _Worker, verdict: Verdict, seconds: float) -> None:
            # The item at the head of ``w``'s queue is lost with the worker; the rest go back.
            if batched and len(w.inflight) > 1:  # one call for all of them: which one failed is unknown
                alone.update(w.inflight)
                queue.extendleft(reversed(w.inflight))
                busy.pop(id(w.conn), None)
                self._replace(w, workers, verifier)
                return
            head = w.inflight.popleft()
            self._note(verdict, seconds)
            deliver(unique[head][0], verdict)
            queue.extendleft(reversed(w.inflight))
            busy.pop(id(w.conn), None)
            self._replace(w, workers, verifier)

        while queue or busy:
            started = sum(w.ready for w in workers)  # one still starting does not count: a started one may be idle
            if queue and started < min(len(queue), self.n_workers):
                workers.extend(self._lease(started, min(len(queue), self.n_workers), verifier))
            for w in list(workers):
                if queue and w.ready and id(w.conn) not in busy:
                    dispatch(w)
            if not queue:  # nothing left to send: workers with nothing in flight go back to the pool now
                done = [w for w in workers if w.ready and id(w.conn) not in busy]
                if done:
                    workers[:] = _without(workers, done)
                    self._release(done)
            watched = [w for w in workers if id(w.conn) in busy or not w.ready]
            now = time.perf_counter()
            starting = queue and not busy and workers and not any(w.ready for w in workers)
            waiting_since = (waiting_since or now) if starting else None
            if waiting_since is not None and now - waiting_since > _STARTUP_S:
                raise RuntimeError(f"verifier worker processes did not start within {_STARTUP_S:g}s")
            limit = min(w.started + self._limit(w) for w in busy.values()) - now if busy else _STARTUP_S
            if queue:  # items wait for a worker: look at the pool again soon
                limit = min(limit, _POLL_S)
            if watched:
                ready = wait([w.conn for w in watched], timeout=max(0.0, limit))
            else:  # no worker of ours yet: the others' calls hold the pool
                time.sleep(max(0.0, limit))
                ready = []
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
                        self._replace(w, workers, verifier)
                    continue
                if msg == _READY:
                    w.ready = True
                    continue
                if msg[0] == _LOADED:
                    w.loaded.add(msg[1])
                    if msg[1] == verifier.cache_key:
                        w.warming, w.started = False, time.perf_counter()
                    continue
                if msg[0] == _WARMING:
                    w.warming, w.started = True, time.perf_counter()
                    with self._lock:
                        self._warm_keys.add(msg[1])
                    continue
                if msg[0] == _LOAD_ERROR:
                    for x in list(workers):  # their other answers would arrive in a later call
                        self._retire(x, workers)
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
            for w in [w for w in busy.values() if now - w.started >= self._limit(w)]:
                if w.warming:
                    self._retire(w, workers)
                    raise RuntimeError(f"a verifier worker did not load {verifier.name!r} within {_STARTUP_S:g}s")
                fail_head(w, Verdict(float("nan"), TIMEOUT, f"no answer within {self.timeout_s:g}s"), now - w.started)

    def _start_process(self, entry: str) -> _Worker:
        # A fresh interpreter, not multiprocessing's spawn/forkserver: those re-run the caller's
        # __main__ (breaks under stdin/REPL and unguarded scripts) and fork is unsafe with threads
        # (the template that forks workers is single-threaded but for its parent watch).
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from rewardsmith.engine import {entry}; {entry}({theirs.fileno()})"],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        return _Worker(proc, Connection(ours.detach()), deque())

    def _fork(self, verifier: Verifier) -> _Worker:
        """A worker forked from the template, ``verifier`` loaded in the template first. Once any
        worker needed the verifier's warm-up, the template forks a successor that runs it and
        takes over when done; forks meanwhile come from the old one (nobody waits on a warm-up)."""
        with self._template_lock:
            t = self._template
            if t is None:
                t = self._start_process("_template_main")
                if not t.conn.poll(_STARTUP_S) or t.conn.recv() != _READY:
                    self._stop(t, graceful=False)
                    raise RuntimeError("the worker template did not start")
                self._template = t
            t = self._take_successor(t)
            key = verifier.cache_key
            with self._lock:
                warm_up = key in self._warm_keys
            if key not in t.loaded:
                t.conn.send(("load", verifier))
                if not t.conn.poll(_STARTUP_S):
                    raise RuntimeError("the worker template did not load the verifier")
                t.loaded.add(t.conn.recv()[1])
            if warm_up and key not in t.warmed and self._successor is None:
                self._successor = _template_fork(t, ("successor", verifier))
                self._successor.loaded, self._successor.warmed = set(t.loaded), t.warmed | {key}
            fresh = _template_fork(t, ("fork",))
            fresh.loaded = set(t.loaded)
            return fresh

    def _drop_templates(self) -> None:
        with self._template_lock:
            templates = [t for t in (self._template, self._successor) if t is not None]
            self._template = self._successor = None
        for t in templates:
            self._stop(t, graceful=False)

    def _take_successor(self, t: _Worker) -> _Worker:
        """The template to fork from: the warm successor once it has said it is ready, else ``t``."""
        s = self._successor
        if s is None or not s.conn.poll():
            return t
        self._successor = None
        try:
            ready = s.conn.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop(s, graceful=False)
            return t
        self._stop(t, graceful=False)  # its workers live on (they watch the engine, not it)
        self._template = s
        return s

    def _limit(self, w: _Worker) -> float:
        return _STARTUP_S if w.warming else w.budget

    def _spawn(self, verifier: Verifier | None = None) -> _Worker:
        """A new worker: forked from the warm template when there is a verifier to load for it,
        else (or if the template fails) a fresh interpreter that loads ``verifier`` once started."""
        if verifier is not None:
            try:
                return self._fork(verifier)
            except (OSError, EOFError, RuntimeError, subprocess.TimeoutExpired):
                self._drop_templates()
        worker = self._start_process("_worker_main")
        if verifier is not None:
            try:
                worker.conn.send((verifier, []))  # no items: load only, while nobody waits on it
            except OSError:
                pass  # found dead at its first use, and replaced
        return worker

    def _replace(self, w: _Worker, workers: list[_Worker], verifier: Verifier) -> _Worker:
        """Stop ``w`` and put a fresh worker in its place (in the call's ``workers`` and the pool)."""
        self._stop(w, graceful=False)
        fresh = self._spawn(verifier)
        workers[workers.index(w)] = fresh
        with self._lock:
            self._workers = [fresh if x is w else x for x in self._workers]
            self.stats.workers_replaced += 1
        return fresh

    def _retire(self, w: _Worker, workers: list[_Worker]) -> None:
        """Stop ``w`` for good (it goes back to no pool)."""
        self._stop(w, graceful=False)
        workers.remove(w)
        with self._lock:
            self._workers = _without(self._workers, [w])

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
            try:
                w.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # killed, not yet reaped: its reaper will
                pass
        w.conn.close()

    def _cache_get(self, key: tuple[str, str]) -> Verdict | None:
        if not self.cache_size:
            return None
        with self._lock:
            v = self._cache.get(key)
            if v is not None:
                self._cache.move_to_end(key)
            return v

    def _cache_put(self, key: tuple[str, str], verdict: Verdict) -> None:
        if not self.cache_size:
            return
        with self._lock:
            self._cache[key] = verdict
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def _template_fork(t: _Worker, request: tuple) -> _Worker:
    """Ask template ``t`` to fork (a worker or a successor); its socket comes as a file descriptor."""
    t.conn.send(request)
    with socket.socket(fileno=os.dup(t.conn.fileno())) as sock:
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    if not fds:
        raise RuntimeError("the worker template sent no socket")
    return _Worker(_ForkedProcess(t.conn.recv()), Connection(fds[0]), deque())  # type: ignore[arg-type]


def _read_idle(w: _Worker) -> None:
    """Take in what an idle worker has said meanwhile (started, loaded); a dead one is found at its next use."""
    try:
        while w.conn.poll():
            msg = w.conn.recv()
            if msg == _READY:
                w.ready = True
            elif msg[0] == _LOADED:
                w.loaded.add(msg[1])
    except (EOFError, OSError):
        pass


def _without(workers: list[_Worker], gone: list[_Worker]) -> list[_Worker]:
    ids = {id(w) for w in gone}
    return [w for w in workers if id(w) not in ids]


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
