import asyncio
import os
import signal
import threading
import time

import pytest

from hostile import CountingVerifier, HostileVerifier
from rewardsmith.engine import VerificationEngine
from rewardsmith.verifiers.base import ERROR, OK, TIMEOUT, Job
from rewardsmith.verifiers.math import MathVerifier

PATHOLOGICAL = [
    r"\boxed{9^{9^{9^{9^{9^{9^{9}}}}}}}",
    r"\boxed{10^{10^{10^{100}}}}",
    r"\boxed{" + r"\frac{1}{" * 150 + "2" + "}" * 150 + "}",
    r"\boxed{" + "(" * 900 + "1" + ")" * 900 + "}",
    r"\boxed{" + "x^" * 900 + "2}",
    r"\boxed{\sqrt[\sqrt[\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}",
]


@pytest.fixture
def engine():
    eng = VerificationEngine(workers=2, timeout_s=1.0)
    yield eng
    eng.close()


def test_hang_crash_and_raise_are_scored_and_the_run_goes_on(engine):
    jobs = [Job("a", "a"), Job("hang", "x"), Job("b", "a"), Job("crash", "x"), Job("raise", "x"), None] + [
        Job(str(i), str(i)) for i in range(40)
    ]
    t0 = time.perf_counter()
    out = engine.run(HostileVerifier(), jobs)
    elapsed = time.perf_counter() - t0
    assert [v.status for v in out[:5]] == [OK, TIMEOUT, OK, ERROR, ERROR]
    assert out[1].correct is None and out[3].correct is None
    assert out[5] is None
    assert all(v.score == 1.0 for v in out[6:])
    assert engine.stats.timeouts == 1 and engine.stats.workers_replaced == 2
    assert elapsed < 30  # generous: only proves nothing waited on the hung item forever
    # the pool still works after replacements
    assert engine.run(HostileVerifier(), [Job("z", "z")])[0].score == 1.0


def test_timeout_bounds_each_item(engine):
    out = engine.run(HostileVerifier(), [Job("sleep0.1", "x"), Job("hang", "x"), Job("hang", "y")])
    assert [v.status for v in out] == [OK, TIMEOUT, TIMEOUT]
    assert engine.stats.slowest_s < engine.timeout_s + 1.0


def test_identical_jobs_verified_once_and_cached_across_batches():
    eng = VerificationEngine(workers=1, timeout_s=5.0, cache_size=10)
    CountingVerifier.calls = 0
    v = CountingVerifier()
    jobs = [Job("a", "a")] * 5 + [Job("b", "a")] * 3
    out = eng.run(v, jobs)
    assert [o.score for o in out] == [1.0] * 5 + [0.0] * 3
    assert CountingVerifier.calls == 2 and eng.stats.deduped == 6
    eng.run(v, [Job("a", "a"), Job("c", "c")])
    assert CountingVerifier.calls == 3 and eng.stats.cache_hits == 1


def test_lru_cache_evicts_oldest():
    eng = VerificationEngine(workers=1, cache_size=2)
    CountingVerifier.calls = 0
    v = CountingVerifier()
    eng.run(v, [Job("a", "a"), Job("b", "b"), Job("c", "c")])  # cache keeps b, c
    eng.run(v, [Job("a", "a")])
    assert CountingVerifier.calls == 4


def test_worker_killed_mid_batch():
    engine = VerificationEngine(workers=2, timeout_s=30.0)  # far above the 1 s items: only the kill can fail one
    killed = threading.Event()

    def kill_a_worker():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for w in list(engine._workers):
                if w.inflight and w.ready:
                    time.sleep(0.2)  # inside its first (1 s) item
                    os.kill(w.process.pid, signal.SIGKILL)
                    killed.set()
                    return
            time.sleep(0.02)

    t = threading.Thread(target=kill_a_worker)
    t.start()
    out = engine.run(
        HostileVerifier(),
        [Job("sleep1.0", ref) for ref in ("x", "y")] + [Job(f"sleep0.0{i}", f"sleep0.0{i}") for i in range(10)],
    )
    t.join()
    assert killed.is_set()
    statuses = [v.status for v in out]
    assert statuses.count(ERROR) == 1 and statuses.count(OK) == 11
    engine.close()


def test_pathological_latex_finishes_within_timeout_from_a_thread():
    eng = VerificationEngine(workers=2, timeout_s=2.0)
    v = MathVerifier()
    jobs = [v.job(p, "1", {}) for p in PATHOLOGICAL] + [v.job(r"\boxed{1}", "1", {})]
    result: dict = {}

    def work():
        t0 = time.perf_counter()
        result["out"] = eng.run(v, jobs)
        result["seconds"] = time.perf_counter() - t0

    th = threading.Thread(target=work)
    th.start()
    th.join(timeout=60)
    eng.close()
    assert not th.is_alive()
    assert result["out"][-1].score == 1.0
    assert all(o.status in (OK, TIMEOUT) for o in result["out"])
    assert eng.stats.slowest_s < 2.0 + 1.0


def test_pathological_latex_from_asyncio():
    eng = VerificationEngine(workers=2, timeout_s=2.0)
    v = MathVerifier()

    async def main():
        jobs = [v.job(p, "1", {}) for p in PATHOLOGICAL[:3]]
        # the event loop stays responsive while verification runs
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        out = await asyncio.wait_for(eng.arun(v, jobs), timeout=60)
        task.cancel()
        return out, ticks

    out, ticks = asyncio.run(main())
    eng.close()
    assert len(out) == 3 and all(o.status in (OK, TIMEOUT) for o in out)
    assert ticks > 0
    assert eng.stats.slowest_s < 3.0


def test_concurrent_threads_share_one_engine(engine):
    results = [None] * 4

    def work(k):
        results[k] = engine.run(HostileVerifier(), [Job(f"{k}-{i}", f"{k}-{i}") for i in range(30)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None and all(v.score == 1.0 for v in r) for r in results)


def test_a_hanging_call_does_not_hold_up_a_concurrent_call():
    """Calls share the pool but each borrows its own workers: while one call waits out its hanging
    items, another call (here: after both workers were taken) is answered, and the pool shrinks back."""
    eng = VerificationEngine(workers=2, timeout_s=15.0)  # far above a worker's start-up under load
    v = HostileVerifier()
    eng.run(v, [Job("a", "a"), Job("b", "b")])  # both workers started and idle
    out = {}
    hanging = threading.Thread(target=lambda: out.update(hang=eng.run(v, [Job("hang", "x"), Job("hang", "y")])))
    hanging.start()
    deadline = time.monotonic() + 20
    while sum(bool(w.inflight) for w in eng._workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(bool(w.inflight) for w in eng._workers) == 2  # both pool workers hold a hanging item
    quick = eng.run(v, [Job(f"q{i}", f"q{i}") for i in range(5)])
    assert [x.score for x in quick] == [1.0] * 5
    assert hanging.is_alive()  # answered while the other call is still waiting on its hanging items
    hanging.join(timeout=60)
    assert [x.status for x in out["hang"]] == [TIMEOUT, TIMEOUT]
    assert len(eng._workers) <= 2 and len(eng._idle) <= 2  # the extra worker stopped when handed back
    eng.close()
    assert eng._workers == [] and eng._idle == []


def test_workers_are_forked_warm_from_a_template_and_survive_its_loss():
    """A killed worker's replacement is forked from the warm template (no interpreter start, no
    imports); if the template dies, spawning falls back to a fresh interpreter and goes on."""
    from rewardsmith.engine import _ForkedProcess

    eng = VerificationEngine(workers=1, timeout_s=1.0)
    v = HostileVerifier()
    assert [o.status for o in eng.run(v, [Job("hang", "x"), Job("a", "a")])] == [TIMEOUT, OK]
    assert eng.stats.workers_replaced == 1 and all(isinstance(w.process, _ForkedProcess) for w in eng._workers)
    template = eng._template.process
    template.kill()
    template.wait(timeout=10)
    assert [o.status for o in eng.run(v, [Job("hang", "y"), Job("b", "b")])] == [TIMEOUT, OK]
    eng.close()
    assert eng._template is None and eng._workers == []


def test_the_template_warms_up_only_once_a_worker_needed_it_and_off_every_item():
    from hostile import SometimesSlowLoadingVerifier
    from rewardsmith.engine import _ForkedProcess

    v = SometimesSlowLoadingVerifier()
    with VerificationEngine(workers=1, timeout_s=0.5) as eng:
        assert [o.status for o in eng.run(v, [Job("a", "a"), Job("hang", "x"), Job("b", "b")])] == [OK, TIMEOUT, OK]
        assert eng._template.loaded == {v.cache_key} and eng._template.warmed == set()  # no job needed it
        out = eng.run(v, [Job("sym1", "sym1"), Job("hang", "y"), Job("sym2", "sym2")])
        assert [o.status for o in out] == [OK, TIMEOUT, OK] and eng.stats.timeouts == 2
        assert eng._template.warmed == set() and eng._successor.warmed == {v.cache_key}  # warming up, off any item
        assert eng._successor.conn.poll(60)  # the successor has warmed up and is ready
        assert [o.status for o in eng.run(v, [Job("hang", "z"), Job("sym3", "sym3")])] == [TIMEOUT, OK]
        assert eng._successor is None and eng._template.warmed == {v.cache_key}  # it took over
        assert isinstance(eng._workers[0].process, _ForkedProcess) and eng._workers[0].loaded == {v.cache_key}
        assert eng.stats.slowest_s < v.load_s  # no warm-up counted against an item


def test_engine_is_picklable_as_settings():
    import pickle

    eng = VerificationEngine(workers=3, timeout_s=2.5, cache_size=7)
    clone = pickle.loads(pickle.dumps(eng))
    assert (clone.n_workers, clone.timeout_s, clone.cache_size) == (3, 2.5, 7)


@pytest.mark.parametrize("kwargs, message", [({"workers": 0}, "workers"), ({"timeout_s": 0}, "timeout_s")])
def test_engine_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VerificationEngine(**kwargs)


# ---------------------------------------------------------------- start-up never eats an item's timeout
def test_slow_import_and_warm_up_do_not_count_against_items():
    from hostile import SlowLoadingVerifier
    from slow_import import IMPORT_S, SlowImportVerifier

    for verifier, load_s in [(SlowImportVerifier(), IMPORT_S), (SlowLoadingVerifier(), SlowLoadingVerifier.load_s)]:
        with VerificationEngine(workers=2, timeout_s=0.3) as eng:  # each load takes 5x an item's limit
            out = eng.run(verifier, [Job(str(i), str(i)) for i in range(6)] + [Job("a", "b")])
            assert [v.status for v in out] == [OK] * 7, (verifier.name, out)
            assert [v.score for v in out] == [1.0] * 6 + [0.0]
            assert eng.stats.timeouts == 0 and eng.stats.slowest_s < load_s


def test_a_real_hang_still_times_out_after_a_slow_load():
    from hostile import SlowLoadingVerifier

    with VerificationEngine(workers=1, timeout_s=0.5) as eng:
        out = eng.run(SlowLoadingVerifier(), [Job("a", "a"), Job("hang", "x"), Job("b", "b")])
    assert [v.status for v in out] == [OK, TIMEOUT, OK]


def test_workers_started_early_are_the_ones_a_run_uses(engine):
    engine.start()  # what `rewardsmith score` does while it reads the input
    started = {w.process.pid for w in engine._workers}
    assert len(started) == 2
    out = engine.run(HostileVerifier(), [Job(str(i), str(i)) for i in range(10)] + [Job("hang", "x")])
    assert [v.status for v in out] == [OK] * 10 + [TIMEOUT]
    assert all(v.score == 1.0 for v in out[:10])
    assert engine.stats.workers_replaced == 1  # only the hung one: the started workers served the run
    assert len(engine._workers) <= 2


def test_workers_started_with_a_verifier_load_it_before_the_first_run(engine):
    from rewardsmith.engine import _read_idle

    verifier = HostileVerifier()
    engine.start([verifier, lambda: None])  # one that cannot travel is skipped here, refused when run
    assert engine.started_workers() == 2
    deadline = time.monotonic() + 120  # a bound on a loaded machine, not a speed check
    while not all(verifier.cache_key in w.loaded for w in engine._workers):
        assert time.monotonic() < deadline, "the started workers never loaded the verifier"
        for w in engine._workers:
            _read_idle(w)
        time.sleep(0.05)
    pids = {w.process.pid for w in engine._workers}
    out = engine.run(verifier, [Job(str(i), str(i)) for i in range(6)])
    assert [v.score for v in out] == [1.0] * 6
    assert {w.process.pid for w in engine._workers} == pids and engine.stats.workers_replaced == 0
