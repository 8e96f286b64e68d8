"""``oni``: labels from a real OpenAI-compatible judge (``transformers serve`` on models scripted
through their weights to reply "yes" or "no"), the reply parser, and an unreachable judge."""

import pytest

from rewardsmith import load_spec
from rewardsmith.shaping.oni import parse_label


def traj(steps):
    msgs = [{"role": "user", "content": "Find the capital of France."}]
    msgs += [{"role": "assistant", "content": s} for s in steps]
    return {"prompt_id": "q", "messages": msgs}


@pytest.mark.parametrize(
    "reply, label",
    [("yes", 1.0), ("Yes.", 1.0), ("NO", 0.0), (" no, it repeats", 0.0), ("maybe", None), ("", None), (None, None)],
)
def test_parse_label(reply, label):
    assert parse_label(reply) == label


def test_unreachable_judge_leaves_every_turn_unlabelled():
    """ONI's retrieval variant pays an unlabelled step nothing: a judge that cannot be reached gives 0."""
    spec = {
        "shaping": [
            {"name": "oni", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0, "timeout_s": 2}
        ],
        "length_unit": "words",
    }
    s = load_spec(spec).score([traj(["look it up", "Paris"])])
    assert s.total.tolist() == [0.0] and s.dense.rewards == [[0.0, 0.0]]


@pytest.mark.slow
def test_labels_from_a_real_server(tmp_path):
    pytest.importorskip("openai")  # transformers serve needs it
    pytest.importorskip("fastapi")
    from judge_server import build_scripted_chat_model, free_port, start_server, stop_server

    yes = build_scripted_chat_model(tmp_path / "yes", "yes")
    no = build_scripted_chat_model(tmp_path / "no", "no")
    port = free_port()
    proc = start_server(None, port)
    try:
        url = f"http://127.0.0.1:{port}/v1"

        def oni(model, **extra):
            return {
                "shaping": [{"name": "oni", "base_url": url, "model": str(model), "coef": 0.5, **extra}],
                "length_unit": "words",
            }

        recs = [traj(["search the web", "search the web", "Paris"]), {"prompt_id": "q", "completion": "Paris"}]
        s = load_spec(oni(yes, cache_dir=str(tmp_path / "labels"))).score(recs)
        # every turn labelled helpful; the repeated turn earns nothing; a single-turn record is one turn
        assert s.dense.unit == "turn" and s.dense.rewards == [[0.5, 0.0, 0.5], [0.5]]
        assert s.total.tolist() == [1.0, 0.5]
        assert load_spec(oni(yes, once_per_text=False)).score(recs[:1]).total.tolist() == [1.5]
        assert load_spec(oni(no)).score(recs).total.tolist() == [0.0, 0.0]
        # the label table (disk cache) answers a rerun without the server
        stop_server(proc)
        again = load_spec(oni(yes, cache_dir=str(tmp_path / "labels"), max_retries=0, timeout_s=2)).score(recs)
        assert again.total.tolist() == [1.0, 0.5]
    finally:
        stop_server(proc)
