"""Ray across nodes: a real two-node cluster on this machine (a head and a worker node, each its own
raylet process with its own CPU and custom resource); chunks are verified on both nodes and the
results — records and saved state of a stateful spec over two batches — equal the local engine's."""

import dataclasses
import json
import shutil
import tempfile

import pytest

ray = pytest.importorskip("ray")

from rewardsmith import load_spec, read_records  # noqa: E402
from rewardsmith.integrations.ray_engine import score_records_ray  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_nodes():
    """Head (``node_a``) + worker node (``node_b``), one CPU each, under a private RAY_TMPDIR so the
    cluster's address file and session dirs never reach other Ray users of this machine; torn down
    (its own processes only) whatever the test does."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    tmp = tempfile.mkdtemp(prefix="rsray")  # short: Ray's socket paths live under it
    env = pytest.MonkeyPatch()
    env.setenv("RAY_TMPDIR", tmp)
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "resources": {"node_a": 1},
                "include_dashboard": False,
            },
        )
        cluster.add_node(num_cpus=1, resources={"node_b": 1})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        env.undo()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*shaping outweighs correctness")  # hapo + kimi, chosen for state and groups
def test_two_nodes_verify_and_equal_local(two_nodes, tmp_path):
    from rewardsmith.integrations.ray_engine import RayVerificationEngine

    nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2 and sorted(k for r in nodes.values() for k in r if k.startswith("node_")) == [
        "node_a",
        "node_b",
    ]
    records = read_records(ROOT / "examples/math_rollouts.jsonl").records
    spec = {
        "verifier": "math",
        "format": {"name": "think_answer", "mode": "add", "weight": 0.1},
        "advantage": {"name": "grpo"},
        "shaping": [{"name": "hapo"}, {"name": "kimi"}],
        "length_unit": "tokens",
        "workers": 2,
        "timeout_s": 10,
    }
    local = load_spec({**spec, "state": str(tmp_path / "local.json")})
    try:
        expected = [local.score_records(records) for _ in range(2)]
    finally:
        local.close()

    engine = RayVerificationEngine(workers=2, timeout_s=10)
    with load_spec({**spec, "state": str(tmp_path / "ray.json")}, engine=engine) as remote:
        got = [remote.score_records(records)]
        after_first = dataclasses.replace(engine.stats)
        got.append(remote.score_records(records))
    assert got == expected
    assert any(r["components"]["hapo"] != 0 for r in expected[1])  # the second batch used the history
    assert (
        json.loads((tmp_path / "ray.json").read_text())["components"]
        == json.loads((tmp_path / "local.json").read_text())["components"]
    )
    # unique answers verified on both nodes
    assert set(engine.node_items) == set(nodes) and all(n > 0 for n in engine.node_items.values())
    assert sum(engine.node_items.values()) == engine.stats.checked
    # batch 2 came from the driver's cache, but for unknown verdicts (timeout, error), which are never cached
    assert engine.stats.checked - after_first.checked == after_first.timeouts + after_first.errors


@pytest.mark.slow
def test_score_records_ray_reports_nodes_and_times_out_on_a_node(two_nodes):
    tower = "\\boxed{\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}"
    spec = {
        "verifier": {"name": "math", "extract": ["boxed"], "inner_timeout_s": 60},
        "timeout_s": 5,
        "length_unit": "words",
    }
    recs = [{"prompt_id": "a", "completion": tower, "answer": "1"}]
    recs += [
        {
            "prompt_id": f"p{k % 4}",
            "completion": f"\\boxed{{{k}}}",
            "answer": str(k % 5),
        }
        for k in range(40)
    ]
    scored, summary = score_records_ray(spec, recs, workers=2)
    assert summary["timeouts"] == 1 and scored[0]["correct"] is None
    assert [r["correct"] for r in scored[1:]] == [k == k % 5 for k in range(40)]  # order kept
    assert len(summary["ray_node_items"]) == 2 and sum(summary["ray_node_items"].values()) == len(recs)
