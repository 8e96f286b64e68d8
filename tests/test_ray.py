"""Ray engine: identical results to the local engine, through the library and the CLI (one local cluster)."""

import json

import pytest

ray = pytest.importorskip("ray")

from rewardsmith import load_spec, read_records  # noqa: E402
from rewardsmith.cli import main  # noqa: E402
from rewardsmith.integrations.ray_engine import score_records_ray  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_smoke():
    """bench/ray_scaling.py runs both parts end to end, Ray identical to local (first: it starts its own Ray)."""
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/ray_scaling.py"),
            "--prompts",
            "4",
            "--rollouts",
            "2",
            "--workers",
            "1",
            "2",
            "--warm-rollouts",
            "8",
            "--repeats",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith(("local engine, 2", "ray, "))]
    assert len(rows) == 3 and all(line.endswith("True") for line in rows)
    assert "scaling: ray, 2 actors vs ray, 1 actor" in out.stdout
    assert "warm 512-rollout ratio" not in out.stdout  # the warm part names its own batch size
    warm = [line for line in out.stdout.splitlines() if line.startswith("warm 8-rollout ratio ray / local:")]
    assert len(warm) == 1 and warm[0].endswith("identical: True"), out.stdout


def test_chunk_plan_adapts_to_the_batch():
    """Small batch: one actor, one chunk; large: every actor, about four chunks each, bounded sizes."""
    from rewardsmith.integrations.ray_engine import plan_chunks

    assert plan_chunks(0, 8) == (0, 0)
    assert plan_chunks(10, 8) == (1, 16)
    assert plan_chunks(40, 8) == (3, 16)  # 3 chunks of <= 16: one per actor used
    assert plan_chunks(512, 2) == (2, 64)  # 8 chunks
    assert plan_chunks(1_000_000, 4) == (4, 256)
    for unique in (1, 15, 16, 17, 33, 100, 511, 4096, 70_000):
        for actors in (1, 2, 3, 7, 64):
            use, size = plan_chunks(unique, actors)
            chunks = -(-unique // size)
            assert 1 <= use <= actors and 16 <= size <= 256 and chunks >= use  # no actor used sits idle
            assert use == actors or unique < 16 * use + 16  # all actors once the batch fills them


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def records():
    return read_records(ROOT / "examples/math_rollouts.jsonl").records


@pytest.mark.slow
def test_ray_equals_local_with_stateful_shaping(cluster, records, tmp_path):
    """Two batches through a stateful spec (HAPO's per-prompt history): records and saved state identical."""
    spec = {
        "verifier": "math",
        "format": {"name": "think_answer", "mode": "add", "weight": 0.1},
        "advantage": {"name": "grpo"},
        "shaping": [{"name": "hapo"}, {"name": "repetition"}],
        "length_unit": "tokens",
        "workers": 2,
        "timeout_s": 5,
    }
    local = load_spec({**spec, "state": str(tmp_path / "local.json")})
    try:
        expected = [local.score_records(records) for _ in range(2)]
    finally:
        local.close()
    remote = load_spec({**spec, "state": str(tmp_path / "ray.json")})
    got = [score_records_ray(remote, records, workers=2) for _ in range(2)]
    assert [scored for scored, _ in got] == expected
    assert any(r["components"]["hapo"] != 0 for r in expected[1])  # the second batch used the history
    assert (
        json.loads((tmp_path / "ray.json").read_text())["components"]
        == json.loads((tmp_path / "local.json").read_text())["components"]
    )
    summary = got[0][1]
    assert (
        summary["records"] == len(records)
        and summary["ray_workers"] == 2
        and summary["groups"] == len({r["prompt_id"] for r in records})
    )
    assert remote.engine.__class__.__name__ == "VerificationEngine"  # the pipeline got its own engine back
    remote.close()


@pytest.mark.slow
def test_hanging_item_times_out_inside_an_actor(cluster):
    spec = {
        "verifier": {"name": "math", "extract": ["boxed"], "inner_timeout_s": 60},
        "timeout_s": 5,
        "length_unit": "words",
    }
    tower = "\\boxed{\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}"
    recs = [{"prompt_id": "a", "completion": tower, "answer": "1"}] + [
        {"prompt_id": "b", "completion": f"\\boxed{{{k}}}", "answer": "3"} for k in range(6)
    ]
    scored, summary = score_records_ray(spec, recs, workers=2)
    assert summary["timeouts"] == 1 and scored[0]["correct"] is None and scored[0]["status"] == "timeout"
    assert [r["correct"] for r in scored[1:]] == [
        False,
        False,
        False,
        True,
        False,
        False,
    ]  # order kept


@pytest.mark.slow
def test_cli_engine_ray(cluster, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: math\nlength_unit: tokens\nshaping:\n  - {name: kimi}\n")
    out_ray, out_local = tmp_path / "ray.jsonl", tmp_path / "local.jsonl"
    src = str(ROOT / "examples/math_rollouts.jsonl")
    assert (
        main(
            [
                "score",
                src,
                "--spec",
                str(spec),
                "-o",
                str(out_ray),
                "--engine",
                "ray",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    assert main(["score", src, "--spec", str(spec), "-o", str(out_local)]) == 0
    assert [json.loads(l) for l in out_ray.read_text().splitlines()] == [
        json.loads(l) for l in out_local.read_text().splitlines()
    ]


@pytest.mark.slow
def test_a_lost_actor_is_replaced_and_its_chunks_rerun(cluster, records):
    """An actor killed between batches (a lost node): both calls in flight to it fail, both chunks rerun on one
    new actor, results unchanged."""
    from rewardsmith.integrations.ray_engine import RayVerificationEngine

    spec = {
        "verifier": "math",
        "length_unit": "words",
        "timeout_s": 10,
        "cache_size": 0,
    }
    with load_spec(spec) as local:
        expected = local.score_records(records)
    engine = RayVerificationEngine(workers=1, timeout_s=10, cache_size=0)  # one actor, two chunks in flight
    with load_spec(spec, engine=engine) as pipe:
        assert pipe.score_records(records) == expected
        dead = engine._actors[0]
        ray.kill(dead)
        assert pipe.score_records(records) == expected
        assert dead not in engine._actors and len(engine._actors) == 1
