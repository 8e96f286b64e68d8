"""Ray engine: identical results to the local engine, through the library and the CLI."""

import json

import pytest

ray = pytest.importorskip("ray")

from rewardkit import load_spec, read_records  # noqa: E402
from rewardkit.cli import main  # noqa: E402
from rewardkit.integrations.ray_engine import score_records_ray  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_equals_local_including_state(cluster, tmp_path):
    records = read_records(ROOT / "examples/math_rollouts.jsonl").records
    spec = {"verifier": "math", "format": {"name": "think_answer", "mode": "add", "weight": 0.1}, "advantage": {"name": "grpo"},
            "shaping": [{"name": "repetition"}], "length_unit": "tokens", "workers": 2, "timeout_s": 5}
    local = load_spec(spec)
    try:
        expected = local.score_records(records)
    finally:
        local.close()
    scored, summary = score_records_ray(spec, records, workers=2)
    assert scored == expected
    assert summary["records"] == len(records) and summary["ray_workers"] == 2


@pytest.mark.slow
def test_cli_engine_ray(cluster, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: math\nlength_unit: tokens\n")
    out_ray, out_local = tmp_path / "ray.jsonl", tmp_path / "local.jsonl"
    src = str(ROOT / "examples/math_rollouts.jsonl")
    assert main(["score", src, "--spec", str(spec), "-o", str(out_ray), "--engine", "ray", "--workers", "2"]) == 0
    assert main(["score", src, "--spec", str(spec), "-o", str(out_local)]) == 0
    assert [json.loads(l) for l in out_ray.read_text().splitlines()] == [json.loads(l) for l in out_local.read_text().splitlines()]
