"""The real server on loopback, spoken to over HTTP."""

import json
import socket
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from rewardkit.integrations.server import create_app  # noqa: E402

TOKEN = "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("srv") / "state.json"
    spec = {"verifier": {"name": "math", "extract": ["boxed"]}, "timeout_s": 2, "workers": 2, "length_unit": "words", "state": str(state)}
    app = create_app(spec, token=TOKEN, max_body_bytes=20_000, save_every_s=0.5)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state
    srv.should_exit = True
    thread.join(timeout=30)
    assert json.loads(state.read_text())["step"] >= 1  # saved on shutdown


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_healthz_needs_no_token(server):
    url, _ = server
    r = httpx.get(f"{url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_openrlhf_get_reward(server):
    url, _ = server
    body = {"query": ["Q: 1/2? A: \\boxed{0.5}", "Q: 1/2? A: \\boxed{2}", "Q: 2+2? A: \\boxed{4}"],
            "prompts": ["Q: 1/2? A: ", "Q: 1/2? A: ", "Q: 2+2? A: "], "labels": ["\\frac{1}{2}", "\\frac{1}{2}", "4"]}
    r = httpx.post(f"{url}/get_reward", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["rewards"] == [1.0, 0.0, 1.0] and data["scores"] == data["rewards"]
    assert data["extra_logs"]["correctness"] == [1.0, 0.0, 1.0]


def test_score_endpoint_keeps_fields(server):
    url, _ = server
    recs = [{"prompt_id": "a", "completion": "\\boxed{3}", "answer": "3", "extra": "kept"}]
    r = httpx.post(f"{url}/score", json={"records": recs}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["records"][0]["extra"] == "kept" and out["records"][0]["correct"] is True
    assert out["summary"]["records"] == 1


def test_auth_failures(server):
    url, _ = server
    body = {"query": ["x"]}
    assert httpx.post(f"{url}/get_reward", json=body, timeout=10).status_code == 401
    assert httpx.post(f"{url}/get_reward", json=body, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401


def test_bad_requests(server):
    url, _ = server
    assert httpx.post(f"{url}/get_reward", json={"query": ["x" * 30_000]}, headers=AUTH, timeout=10).status_code == 413
    r = httpx.post(f"{url}/get_reward", content=b"{not json", headers={**AUTH, "content-type": "application/json"}, timeout=10)
    assert r.status_code == 422
    r = httpx.post(f"{url}/get_reward", json={"query": ["a", "b"], "prompts": ["a"]}, headers=AUTH, timeout=10)
    assert r.status_code == 422 and "'prompts' has 1 items" in r.text
    r = httpx.post(f"{url}/score", json={"records": [{"completion": "x"}]}, headers=AUTH, timeout=10)
    assert r.status_code == 422 and "records[0]: missing required field 'prompt_id'" in r.text


def test_hanging_verifier_still_answers_within_the_timeout(server):
    url, _ = server
    tower = "\\boxed{" + "\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}" + "}"
    body = {"query": [tower, "\\boxed{1}"], "prompts": ["", ""], "labels": ["1", "1"]}
    t0 = time.monotonic()
    r = httpx.post(f"{url}/get_reward", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 200
    assert r.json()["rewards"][1] == 1.0
    assert time.monotonic() - t0 < 2 * 2 + 5  # two items at most, each bounded by timeout_s = 2


def test_concurrent_requests(server):
    url, _ = server
    results = []

    def go(k):
        body = {"query": [f"\\boxed{{{k}}}"], "prompts": [""], "labels": [str(k)]}
        results.append(httpx.post(f"{url}/get_reward", json=body, headers=AUTH, timeout=60).json()["rewards"])

    threads = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [[1.0]] * 8
