"""The real server on loopback, spoken to over HTTP (and ``rewardsmith serve`` as a process)."""

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from rewardsmith.integrations import openrlhf  # noqa: E402
from rewardsmith.integrations.server import create_app  # noqa: E402

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# inner_timeout_s large: math-verify's own timeout must not rescue a hanging input, the engine's hard one must
MATH_SPEC = {
    "verifier": {"name": "math", "extract": ["boxed"], "inner_timeout_s": 60},
    "timeout_s": 2,
    "workers": 2,
    "length_unit": "words",
}
TOWER = "\\boxed{\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}"  # sympy works on this far beyond 2 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def start_serve(spec, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``rewardsmith serve --spec SPEC ARGS`` as a real process on a free loopback port, returned with
    its URL once /healthz answers (killed if it never does). ``env``: the whole environment (default:
    this one, unbuffered)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardsmith", "serve", "--spec", str(spec), "--port", str(port), *args]
        + ["--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, url


@contextlib.contextmanager
def running(app):
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("srv") / "state.json"
    app = create_app({**MATH_SPEC, "state": str(state)}, token=TOKEN, max_body_bytes=20_000, save_every_s=0.5)
    with running(app) as url:
        yield url, state
    assert json.loads(state.read_text())["step"] >= 1  # saved on shutdown


def test_healthz_needs_no_token(server):
    url, _ = server
    r = httpx.get(f"{url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_openrlhf_get_reward(server):
    url, _ = server
    body = {
        "query": ["Q: 1/2? A: \\boxed{0.5}", "Q: 1/2? A: \\boxed{2}", "Q: 2+2? A: \\boxed{4}", "Q: 2+2? A: no idea"],
        "prompts": ["Q: 1/2? A: ", "Q: 1/2? A: ", "Q: 2+2? A: ", "Q: 2+2? A: "],
        "labels": ["\\frac{1}{2}", "\\frac{1}{2}", "4", "4"],
    }
    r = httpx.post(f"{url}/get_reward", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["rewards"] == [1.0, 0.0, 1.0, 0.0] and data["scores"] == [1.0, 0.0, 1.0, 0.0]
    assert data["extra_logs"] == {
        "correctness": [1.0, 0.0, 1.0, 0.0],
        "correct_known": [1.0] * 4,
        "timeout": [0.0] * 4,
        "error": [0.0] * 4,
        "judge_failed": [0.0] * 4,
    }


def test_unknown_correctness_keeps_logs_finite(server):
    url, _ = server
    r = httpx.post(
        f"{url}/get_reward",
        json={"query": ["\\boxed{2}"], "prompts": [""], "labels": ["\\frac{1}{"]},
        headers=AUTH,
        timeout=60,
    )
    data = r.json()
    assert (
        data["extra_logs"]["correct_known"] == [0.0]
        and data["extra_logs"]["correctness"] == [0.0]
        and data["scores"] == [0.0]
    )


def test_empty_request(server):
    url, _ = server
    r = httpx.post(f"{url}/get_reward", json={"query": [], "prompts": [], "labels": []}, headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.json()["rewards"] == []


def test_score_endpoint_keeps_fields(server):
    url, _ = server
    recs = [{"prompt_id": "a", "completion": "\\boxed{3}", "answer": "3", "extra": "kept"}]
    r = httpx.post(f"{url}/score", json={"records": recs}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["records"][0]["extra"] == "kept" and out["records"][0]["correct"] is True
    assert out["summary"]["records"] == 1 and out["summary"]["groups"] == 1


def test_auth_failures(server):
    url, _ = server
    body = {"query": ["x"]}
    assert httpx.post(f"{url}/get_reward", json=body, timeout=10).status_code == 401
    assert (
        httpx.post(f"{url}/get_reward", json=body, headers={"Authorization": "Bearer nope"}, timeout=10).status_code
        == 401
    )
    assert (
        httpx.post(f"{url}/score", json={"records": []}, headers={"Authorization": TOKEN}, timeout=10).status_code
        == 401
    )  # no "Bearer"


def test_bad_requests(server):
    url, _ = server
    r = httpx.post(f"{url}/get_reward", json={"query": ["x" * 30_000]}, headers=AUTH, timeout=10)
    assert r.status_code == 413 and "over 20000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 1000

    r = httpx.post(
        f"{url}/get_reward", content=chunks(), headers={**AUTH, "content-type": "application/json"}, timeout=10
    )
    assert r.status_code == 413
    r = httpx.post(
        f"{url}/get_reward", content=b"{not json", headers={**AUTH, "content-type": "application/json"}, timeout=10
    )
    assert r.status_code == 422 and "invalid JSON" in r.text
    r = httpx.post(f"{url}/get_reward", json={"query": ["a", "b"], "prompts": ["a"]}, headers=AUTH, timeout=10)
    assert r.status_code == 422 and "'prompts' has 1 items" in r.text
    r = httpx.post(f"{url}/get_reward", json={"prompts": ["a"]}, headers=AUTH, timeout=10)
    assert r.status_code == 422 and "query: Field required" in r.text
    r = httpx.post(f"{url}/score", json={"records": [{"completion": "x"}]}, headers=AUTH, timeout=10)
    assert r.status_code == 422 and "records[0]: missing required field 'prompt_id'" in r.text


def test_hanging_verifier_answers_within_the_timeout_and_the_server_stays_responsive(server):
    url, _ = server
    result = {}

    def hang():
        t0 = time.monotonic()
        body = {"query": [TOWER, "\\boxed{1}"], "prompts": ["", ""], "labels": ["1", "1"]}
        result["response"] = httpx.post(f"{url}/get_reward", json=body, headers=AUTH, timeout=60)
        result["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(0.5)  # the tower is being verified now
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    assert thread.is_alive()  # answered while the hanging request was still in flight: the event loop is free
    other = httpx.post(
        f"{url}/get_reward", json={"query": ["\\boxed{7}"], "prompts": [""], "labels": ["7"]}, headers=AUTH, timeout=60
    )
    assert other.json()["rewards"] == [1.0]  # a request in flight during the hang still gets its answer
    thread.join(timeout=60)
    data = result["response"].json()
    assert data["extra_logs"]["timeout"] == [1.0, 0.0] and data["extra_logs"]["correct_known"] == [0.0, 1.0]
    assert data["rewards"] == [0.0, 1.0]
    assert result["seconds"] < 2 + 5  # one hanging item, killed at timeout_s = 2


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


def test_group_aware_spec_checks_whole_groups_and_sends_its_components():
    spec = {
        "verifier": {"name": "exact", "extract": ["hash"]},
        "length_unit": "words",
        "shaping": [{"name": "kimi", "coef": 1.0}],
    }
    with running(create_app(spec, group_size=2)) as url:
        body = {
            "query": ["P1 ####3", "P1 a b ####3", "P2 ####6", "P2 ####5"],
            "prompts": ["P1 ", "P1 ", "P2 ", "P2 "],
            "labels": ["3", "3", "6", "6"],
        }
        data = httpx.post(f"{url}/get_reward", json=body, timeout=30).json()
        # group P1: both correct, 1 and 3 words -> +0.5 / -0.5; group P2: equal lengths -> 0
        assert data["extra_logs"]["kimi"] == [0.5, -0.5, 0.0, 0.0] and data["rewards"] == [1.5, 0.5, 1.0, 0.0]
        partial = {"query": body["query"][:3], "prompts": body["prompts"][:3], "labels": body["labels"][:3]}
        r = httpx.post(f"{url}/get_reward", json=partial, timeout=30)
        assert r.status_code == 422 and "needs whole groups" in r.text


def test_python_file_mode_equals_http(monkeypatch, tmp_path):
    """OpenRLHF's ``--remote_rm_url reward.py`` loads the file by path and calls reward_func."""
    torch = pytest.importorskip("torch")
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "words"}))
    monkeypatch.setenv(openrlhf.SPEC_ENV, str(spec_path))
    loader = importlib.util.spec_from_file_location("reward_func", openrlhf.__file__)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    out = module.reward_func(["Q ####3", "Q ####4"], ["Q ", "Q "], ["3", "3"])
    assert torch.equal(out["rewards"], torch.tensor([1.0, 0.0])) and torch.equal(
        out["extra_logs"]["correctness"], torch.tensor([1.0, 0.0])
    )


def test_an_unknown_judgement_is_null_over_http_and_zero_flagged_in_the_python_file(monkeypatch, tmp_path):
    """A model-backed spec whose reward model is down: ``/get_reward`` answers ``null`` with
    ``judge_failed`` = 1, which OpenRLHF's HTTP client cannot turn into its reward tensor (a loud failure,
    never a made-up 0); the Python-file reward gives 0 with the same flag."""
    torch = pytest.importorskip("torch")
    from fastapi.testclient import TestClient

    dead = f"http://127.0.0.1:{free_port()}/get_reward"
    spec = {"verifier": {"name": "reward_model", "url": dead, "timeout_s": 5}, "length_unit": "words"}
    body = {"query": ["Q a", "Q b"], "prompts": ["Q ", "Q "]}
    with TestClient(create_app(spec)) as client:
        r = client.post("/get_reward", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["rewards"] == [None, None]
    assert data["extra_logs"]["judge_failed"] == [1.0, 1.0] and data["extra_logs"]["correct_known"] == [0.0, 0.0]
    # OpenRLHF (3c3be62, samples_generator._process_response_into_experience) stores a reply's reward as
    # torch.tensor([reward]): a null stops the run there
    with pytest.raises(RuntimeError, match="NoneType"):
        torch.tensor([data["rewards"][:1]])

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    monkeypatch.setenv(openrlhf.SPEC_ENV, str(spec_path))
    loader = importlib.util.spec_from_file_location("reward_func", openrlhf.__file__)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    out = module.reward_func(body["query"], body["prompts"])
    assert out["rewards"].tolist() == [0.0, 0.0] and out["extra_logs"]["judge_failed"].tolist() == [1.0, 1.0]


@pytest.mark.slow  # starts a server process
def test_cli_serve_process_saves_state_on_shutdown(tmp_path):
    state = tmp_path / "state.json"
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "words", "state": str(state)})
    )
    proc, url = start_serve(str(spec), env={**os.environ, "PYTHONUNBUFFERED": "1", "REWARDSMITH_TOKEN": TOKEN})
    try:
        r = httpx.post(
            f"{url}/get_reward", json={"query": ["####2"], "prompts": [""], "labels": ["2"]}, headers=AUTH, timeout=30
        )
        assert r.json()["rewards"] == [1.0]
        assert httpx.post(f"{url}/get_reward", json={"query": ["####2"]}, timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert json.loads(state.read_text())["step"] == 1


def test_the_server_starts_its_workers_at_start_up():
    from rewardsmith import load_spec

    pipe = load_spec({"verifier": "math", "length_unit": "chars", "workers": 2})
    try:
        create_app(pipe)
        assert pipe.engine.started_workers() == 2  # before any request
    finally:
        pipe.close()
