"""`rewardsmith serve` called as OpenRLHF's ``SingleTurnAgentExecutor`` calls it: one rollout per
``/get_reward`` request (``{"query": [prompt + response], "prompts": [prompt], "labels": [label]}``),
all at once, in any order. The group barrier must give each the reward `rewardsmith score` gives
the same rollouts scored as whole groups."""

import asyncio
import hashlib
import json
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from rewardsmith.cli import main as cli_main  # noqa: E402
from rewardsmith.integrations.group_barrier import BarrierClosed, ClientGone, GroupBarrier  # noqa: E402
from rewardsmith.integrations.server import create_app  # noqa: E402
from rewardsmith.registry import SpecError  # noqa: E402
from test_server import start_serve  # noqa: E402

N = 4  # rollouts per prompt
PROMPTS = ["P0: 2+1? ", "P1: 3+3? ", "P2: 9-4? "]
ANSWERS = ["3", "6", "5"]
PROMPT_IDS = {p: hashlib.sha1(p.encode()).hexdigest()[:16] for p in PROMPTS}  # the server's keys (HAPO's history)
EXACT = {"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "words", "workers": 1}
LASER_BASE = {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0}
SPECS = {
    "kimi": {**EXACT, "shaping": [{"name": "kimi", "coef": 1.0}]},
    "laser_d": {
        **EXACT,
        "base": LASER_BASE,
        "shaping": [
            {"name": "laser_d", "lower": 2, "upper": 12, "interval": 2, "anchor": None, "update_every": 1, "window": 2}
        ],
    },
    "hapo": {**EXACT, "shaping": [{"name": "hapo"}]},
}


def batch(seed: int) -> list[dict]:
    """N rollouts for each prompt: lengths 1..10 words, about two in three right."""
    rng = random.Random(seed)
    records = []
    for prompt, answer in zip(PROMPTS, ANSWERS):
        for _ in range(N):
            said = answer if rng.random() < 0.65 else str(int(answer) + rng.randint(1, 3))
            words = " ".join(rng.choice(["so", "then", "thus", "add", "carry"]) for _ in range(rng.randint(1, 10)))
            records.append(
                {
                    "prompt_id": PROMPT_IDS[prompt],
                    "prompt": prompt,
                    "completion": f"{words} ####{said}",
                    "answer": answer,
                }
            )
    return records


def score_cli(spec_path, records, tmp_path, name) -> list[float]:
    """The rewards `rewardsmith score` gives ``records`` (its state file carried between calls)."""
    src, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.scored.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli_main(["score", str(src), "--spec", str(spec_path), "-o", str(out)]) == 0
    return [json.loads(line)["reward"] for line in out.read_text().splitlines()]


def post_one(url: str, rec: dict, timeout: float = 60) -> httpx.Response:
    """Exactly OpenRLHF's payload for one rollout (no header: its client sends none)."""
    body = {"query": [rec["prompt"] + rec["completion"]], "prompts": [rec["prompt"]], "labels": [rec["answer"]]}
    return httpx.post(f"{url}/get_reward", json=body, timeout=timeout)


def post_concurrently(url: str, records: list[dict], seed: int) -> list[dict]:
    """One request per rollout, all at once, sent in a shuffled order; the answers in record order."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    with ThreadPoolExecutor(len(records)) as pool:
        futures = {i: pool.submit(post_one, url, records[i]) for i in order}
        responses = {i: f.result() for i, f in futures.items()}
    assert all(r.status_code == 200 for r in responses.values()), [r.text for r in responses.values()]
    return [responses[i].json() for i in range(len(records))]


def write_spec(tmp_path, name: str, spec: dict) -> object:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**spec, "state": str(tmp_path / f"{name}.state.json")}))
    return path


def stop(proc) -> str:
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, output
    return output


@pytest.mark.slow  # a server process and four `score` runs per case
@pytest.mark.parametrize("name, groups_per_step", [("kimi", 1), ("kimi", 3), ("hapo", 1), ("hapo", 3), ("laser_d", 3)])
def test_one_rollout_per_request_equals_score(tmp_path, name, groups_per_step):
    """Two batches of 3 prompts × 4 rollouts in sequence, state carried (as `score` carries it in its
    state file). Group by group (the default) or one call per batch (--groups-per-step 3, as `score`
    sees a batch): kimi and hapo give the same rewards either way; laser_d, whose targets come from
    the whole batch, needs the latter."""
    serve_spec = write_spec(tmp_path, f"{name}-serve", SPECS[name])
    proc, url = start_serve(serve_spec, "--num-generations", str(N), "--groups-per-step", str(groups_per_step))
    reference_spec = write_spec(tmp_path, f"{name}-score", SPECS[name])
    degraded_spec = write_spec(tmp_path, f"{name}-alone", SPECS[name])
    served, expected, alone = [], [], []
    try:
        for step, seed in enumerate((11, 12)):
            records = batch(seed)
            served += [a["rewards"][0] for a in post_concurrently(url, records, seed)]
            expected += score_cli(reference_spec, records, tmp_path, f"{name}-{step}")
            singles = [{**r, "prompt_id": f"{r['prompt_id']}#{i}"} for i, r in enumerate(records)]
            alone += score_cli(degraded_spec, singles, tmp_path, f"{name}-alone-{step}")
        barrier = httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"]
    finally:
        stop(proc)  # saves the server's state
    assert served == expected
    assert alone != expected  # scored as groups of one (what serve did before), the shaper changes the rewards
    assert barrier["partial_groups"] == 0 and barrier["waiting_rollouts"] == 0 and barrier["released"] == 0
    assert barrier["groups_scored"] == 2 * len(PROMPTS) and barrier["short_calls"] == 0
    if groups_per_step == len(PROMPTS):  # one call per batch: the very state `score` keeps, step counter included
        saved = [json.loads(Path(json.loads(p.read_text())["state"]).read_text()) for p in (serve_spec, reference_spec)]
        assert saved[0]["components"] == saved[1]["components"] and saved[0]["step"] == saved[1]["step"] == 2


@pytest.mark.slow  # waits out a group timeout in a server process
def test_partial_group_is_scored_after_the_timeout_with_a_warning_and_a_count(tmp_path):
    spec = write_spec(tmp_path, "kimi", SPECS["kimi"])
    proc, url = start_serve(spec, "--num-generations", str(N), "--group-timeout-s", "2")
    try:
        records = batch(5)[: N - 1]  # the group's last rollout is never sent
        t0 = time.monotonic()
        answers = post_concurrently(url, records, 5)
        waited = time.monotonic() - t0
        metrics = httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"]
    finally:
        output = stop(proc)
    assert 2 <= waited < 30
    assert [a["rewards"] for a in answers] == [[r] for r in score_cli(spec, records, tmp_path, "partial")]
    assert metrics["partial_groups"] == 1 and metrics["groups_scored"] == 1
    assert f"had {N - 1} of {N} rollouts after 2s; scored as they are" in output


@pytest.mark.slow  # a server process and a `score` run
def test_shutdown_answers_the_waiting_requests_at_once(tmp_path):
    spec = write_spec(tmp_path, "kimi", SPECS["kimi"])
    proc, url = start_serve(spec, "--num-generations", str(N), "--group-timeout-s", "300")
    records = batch(7)[:2]
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(post_one, url, r) for r in records]
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"]["waiting_rollouts"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        output = stop(proc)
        answers = [f.result() for f in futures]
    assert time.monotonic() - t0 < 30  # not the 300 s group timeout
    assert [a.json()["rewards"] for a in answers] == [[r] for r in score_cli(spec, records, tmp_path, "flushed")]
    assert "had 2 of 4 rollouts at shutdown" in output


def test_a_group_aware_spec_without_a_group_size_is_refused_at_start_up(tmp_path):
    with pytest.raises(SpecError, match="group-aware shapers \\(kimi\\).*--num-generations"):
        create_app(SPECS["kimi"])
    spec = tmp_path / "kimi.json"
    spec.write_text(json.dumps(SPECS["kimi"]))
    assert cli_main(["serve", "--spec", str(spec), "--port", "1"]) == 2
    waits = ["--num-generations", "8", "--groups-per-step", "256", "--max-connections", "1024"]
    assert cli_main(["serve", "--spec", str(spec), "--port", "1", *waits]) == 2  # 2048 waiting requests


def test_the_python_file_reward_refuses_one_rollout_calls_for_a_group_aware_spec():
    """OpenRLHF calls a Python-file reward one rollout at a time: kimi would see groups of one."""
    from rewardsmith import load_spec
    from rewardsmith.integrations.grouping import PartialGroupError
    from rewardsmith.integrations.openrlhf import score_openrlhf

    pipeline = load_spec(SPECS["kimi"])
    with pytest.raises(PartialGroupError, match="one rollout at a time.*rewardsmith serve --num-generations"):
        score_openrlhf(pipeline, ["P a ####3"], ["P "], ["3"])
    whole = score_openrlhf(pipeline, ["P a ####3", "P ####3"], ["P ", "P "], ["3", "3"])
    assert whole["extra_logs"]["kimi"] == [-0.5, 0.5]
    assert score_openrlhf(load_spec(EXACT), ["P ####3"], ["P "], ["3"])["rewards"] == [1.0]


def test_a_spec_without_group_aware_shapers_answers_at_once():
    from test_server import running

    with running(create_app(EXACT, group_size=N, group_timeout_s=300)) as url:
        t0 = time.monotonic()
        r = post_one(url, batch(3)[0])
        assert r.status_code == 200 and time.monotonic() - t0 < 30
        assert httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"] is None


def test_a_disconnected_client_gives_its_place_back():
    """OpenRLHF's client gives up after 180 s and sends the rollout again: the first request's place
    is freed, so the group completes with the retry and not with a stale copy."""
    from test_server import running

    app = create_app(SPECS["kimi"], group_size=2, group_timeout_s=300)
    records = [r for r in batch(9) if r["prompt"] == PROMPTS[0]][:2]
    with running(app) as url:
        with pytest.raises(httpx.ReadTimeout):
            post_one(url, records[0], timeout=0.5)
        deadline = time.monotonic() + 30
        while (metrics := httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"])["released"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert metrics["waiting_rollouts"] == 0
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda r: post_one(url, r).json(), records))
        expected = app.state.pipeline.score([dict(r) for r in records], save=False).total.tolist()
        assert [a["rewards"] for a in answers] == [[x] for x in expected]
        assert httpx.get(f"{url}/healthz", timeout=10).json()["group_barrier"]["groups_scored"] == 1


def test_bad_one_rollout_requests():
    from test_server import running

    with running(create_app(SPECS["kimi"], group_size=N)) as url:
        r = httpx.post(f"{url}/get_reward", json={"query": ["x ####3"], "labels": ["3"]}, timeout=10)
        assert r.status_code == 422 and "needs its prompt" in r.text  # nothing to group it by
        r = httpx.post(f"{url}/get_reward", json={"query": ["x"], "prompts": ["P"], "group_ids": []}, timeout=10)
        assert r.status_code == 422 and "'group_ids' has 0 items" in r.text
        old = {"query": ["P a ####3", "P ####3"], "prompts": ["P ", "P "], "labels": ["3", "3"]}
        r = httpx.post(f"{url}/get_reward", json=old, timeout=10)
        assert r.status_code == 422 and "needs whole groups" in r.text  # several rollouts: as before, no waiting


# ---- the barrier's own rules, on one event loop (scoring recorded, not run) ----


def run_barrier(groups_per_call: int, timeout_s: float, script):
    calls = []

    async def score_rows(records, step):
        calls.append(([r["completion"] for r in records], step))
        await asyncio.sleep(0)
        return [f"answer:{r['completion']}" for r in records]

    async def main():
        barrier = GroupBarrier(score_rows, 2, timeout_s, groups_per_call)
        return await script(barrier), barrier

    result, barrier = asyncio.run(main())
    return calls, result, barrier


def never():
    return asyncio.Event().wait()


def rec(prompt_id: str, completion: str) -> dict:
    return {"prompt_id": prompt_id, "completion": completion}


def test_duplicated_prompts_close_a_group_at_the_group_size_in_arrival_order():
    async def script(barrier):
        return await asyncio.gather(*(barrier.submit(rec("p", c), None, never) for c in "abcd"))

    calls, answers, barrier = run_barrier(1, 30, script)
    assert calls == [(["a", "b"], None), (["c", "d"], None)] and answers == [f"answer:{c}" for c in "abcd"]
    calls, _, _ = run_barrier(2, 30, script)
    assert calls == [(["a", "b", "c", "d"], None)]  # one call of two groups: one prompt, one group of 4 there


def test_groups_wait_for_their_step_and_a_short_step_is_scored_at_the_timeout():
    async def script(barrier):
        return await asyncio.gather(
            barrier.submit(rec("p", "a"), 3, never),
            barrier.submit(rec("q", "b"), 4, never),  # another step: never scored with step 3
            barrier.submit(rec("p", "c"), 3, never),
            barrier.submit(rec("q", "d"), 4, never),
            barrier.submit(rec("r", "e"), 3, never),
            barrier.submit(rec("r", "f"), 3, never),
        )

    calls, answers, barrier = run_barrier(2, 0.2, script)
    assert calls == [(["a", "c", "e", "f"], 3), (["b", "d"], 4)]
    assert barrier.counters == {"groups_scored": 3, "partial_groups": 0, "short_calls": 1, "released": 0}


def test_a_partial_group_is_scored_as_it_is_and_counted(caplog):
    async def script(barrier):
        return await barrier.submit(rec("p", "a"), None, never)

    with caplog.at_level("WARNING", logger="uvicorn.error"):
        calls, answer, barrier = run_barrier(1, 0.1, script)
    assert calls == [(["a"], None)] and answer == "answer:a" and barrier.counters["partial_groups"] == 1
    assert "prompt p (step auto) had 1 of 2 rollouts after 0.1s" in caplog.text


def test_a_released_place_reopens_a_complete_group_for_the_retry():
    async def script(barrier):
        left = asyncio.Event()
        first = asyncio.ensure_future(barrier.submit(rec("p", "a"), None, left.wait))
        second = asyncio.ensure_future(barrier.submit(rec("p", "b"), None, never))
        third = asyncio.ensure_future(barrier.submit(rec("q", "x"), None, never))
        await asyncio.sleep(0.01)  # p is complete, held for a second group (groups_per_call 2)
        left.set()
        with pytest.raises(ClientGone):
            await first
        assert barrier.metrics()["waiting_rollouts"] == 2
        retry = barrier.submit(rec("p", "a2"), None, never)
        fourth = barrier.submit(rec("q", "y"), None, never)
        return await asyncio.gather(second, third, retry, fourth)

    calls, answers, barrier = run_barrier(2, 30, script)
    assert calls == [(["b", "a2", "x", "y"], None)] and barrier.counters["released"] == 1


def test_scoring_failures_reach_every_waiting_request_and_close_refuses_new_ones():
    async def failing(records, step):
        raise ValueError("a shaper refused a record")

    async def main():
        barrier = GroupBarrier(failing, 2, 30)
        results = await asyncio.gather(
            *(barrier.submit(rec("p", c), None, never) for c in "ab"), return_exceptions=True
        )
        waiting = asyncio.ensure_future(barrier.submit(rec("q", "c"), None, never))
        await asyncio.sleep(0.01)
        await barrier.close()
        with pytest.raises(BarrierClosed):
            await barrier.submit(rec("q", "d"), None, never)
        return results, await asyncio.gather(waiting, return_exceptions=True)

    results, flushed = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in results + flushed)  # the held one was scored at close, and failed


def test_a_client_leaving_while_its_group_is_scored_changes_nothing_for_the_others():
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(records, step):
        started.set()
        await finish.wait()
        return [r["completion"] for r in records]

    async def main():
        barrier = GroupBarrier(slow, 2, 30)
        left = asyncio.Event()
        leaving = asyncio.ensure_future(barrier.submit(rec("p", "a"), None, left.wait))
        staying = asyncio.ensure_future(barrier.submit(rec("p", "b"), None, never))
        await started.wait()
        left.set()
        with pytest.raises(ClientGone):
            await leaving
        finish.set()
        return await staying, barrier.counters

    answer, counters = asyncio.run(main())
    assert answer == "b" and counters["released"] == 0 and counters["groups_scored"] == 1


@pytest.mark.slow  # a server process (math verifier)
def test_the_docs_example_runs_as_written(tmp_path):
    """The group barrier example of docs/integrations.md: its shell lines, its Python, the printed rewards."""
    doc = (Path(__file__).parents[1] / "docs" / "integrations.md").read_text()
    section = doc[doc.index("### One rollout per request: the group barrier") :]
    shell = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1).splitlines()
    program = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    expected = re.search(r"print\(.*\)  # (\[.*\])", program).group(1)
    subprocess.run(shell[0], shell=True, cwd=tmp_path, check=True)
    serve = shlex.split(shell[1].rstrip(" &"))
    assert serve[:2] == ["rewardsmith", "serve"]
    options = dict(zip(serve[2::2], serve[3::2]))  # every flag there takes a value
    spec, _ = options.pop("--spec"), options.pop("--port")
    proc, url = start_serve(tmp_path / spec, *(x for option in options.items() for x in option))
    try:
        run = subprocess.run(
            [sys.executable, "-c", program.replace("http://127.0.0.1:8000", url)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop(proc)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == expected
