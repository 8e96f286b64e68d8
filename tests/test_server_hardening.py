"""The server under attack, over real HTTP on loopback: token before body, slow bodies cut off,
strict validation with no state change on failure, and requests verified together."""

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
pytest.importorskip("uvicorn")

from rewardsmith.integrations.server import create_app  # noqa: E402
from test_server import TOWER, running, start_serve  # noqa: E402

TOKEN = "tok-9f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXACT = {"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "words"}
# HAPO keeps a history per prompt; meanstd reads meta.rm, so a record without it fails *after* HAPO ran
STATEFUL = {**EXACT, "shaping": [{"name": "hapo"}, {"name": "meanstd", "score_key": "rm"}]}


def raw_post(port, path="/get_reward", headers=(), body=b"", chunked=False):
    """A socket that has sent a POST's head (and ``body``); the caller decides how slowly the rest comes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json", *headers]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {10**6}")
    s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return s


def read_until_closed(s, limit_s=30):
    """Everything the server sends until it closes the connection (None if it kept it open). A
    close with our trickled bytes unread reaches us as a reset, which may drop the reply itself."""
    s.settimeout(limit_s)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


def test_token_is_checked_before_the_body_is_read():
    with running(create_app(EXACT, token=TOKEN)) as url:
        r = httpx.post(
            f"{url}/get_reward", content=b"{not json", headers={"content-type": "application/json"}, timeout=10
        )
        assert r.status_code == 401 and r.json() == {"detail": "missing or wrong bearer token"}  # no parser detail
        r = httpx.post(f"{url}/score", content=b"[" * 5000, headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert r.status_code == 401 and "JSON" not in r.text
        port = int(url.rsplit(":", 1)[1])
        s = raw_post(port)  # announces 1 MB, sends nothing: answered and closed at once, never read
        reply = read_until_closed(s)
        assert reply is not None and reply.startswith(b"HTTP/1.1 401") and b"connection: close" in reply.lower()


def test_slow_bodies_are_cut_off_and_hold_no_slot():
    """Several clients trickle never-ending chunked bodies (with and without the token): each is
    refused and disconnected (401 at once, 408 at the body deadline), and a normal request is
    answered meanwhile."""
    app = create_app(EXACT, token=TOKEN, body_timeout_s=2.0, max_body_bytes=10**6)
    with running(app) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = [raw_post(port, chunked=True, body=b"1\r\n{\r\n") for _ in range(6)]
        slow += [
            raw_post(port, headers=[f"Authorization: Bearer {TOKEN}"], chunked=True, body=b"1\r\n{\r\n")
            for _ in range(6)
        ]
        stop = threading.Event()

        def trickle():
            while not stop.is_set():
                for s in slow:
                    try:
                        s.sendall(b"1\r\n \r\n")
                    except OSError:
                        pass
                time.sleep(0.2)

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        try:
            ok = httpx.post(f"{url}/get_reward", json={"query": ["####3"], "labels": ["3"]}, headers=AUTH, timeout=30)
            assert ok.json()["rewards"] == [1.0]  # served while 12 slow clients are connected
            replies = [read_until_closed(s) for s in slow]
        finally:
            stop.set()
            feeder.join()
        assert all(r is not None for r in replies)  # the server closed every one of them
        assert all(r.startswith(b"HTTP/1.1 401") for r in replies[:6] if r)
        assert all(r.startswith(b"HTTP/1.1 408") for r in replies[6:] if r)
        stalled = raw_post(port, headers=[f"Authorization: Bearer {TOKEN}"], body=b'{"query": [')  # then silence
        reply = read_until_closed(stalled)
        assert reply.startswith(b"HTTP/1.1 408") and b"request body not received within 2s" in reply
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_bad_requests_get_422_and_change_no_state(tmp_path):
    good = {
        "query": ["Q1 ####3", "Q1 a b ####3", "Q2 ####5"],
        "prompts": ["Q1 ", "Q1 ", "Q2 "],
        "labels": ["3", "3", "4"],
    }
    rec = {"prompt_id": "Q1", "completion": "####3", "answer": "3", "meta": {"rm": 0.5}}
    bad = [
        ("/get_reward", {**good, "step": 1e20}, "step: Input should be a valid integer"),
        ("/get_reward", {**good, "step": 10**13}, "step: Input should be less than or equal to"),
        ("/get_reward", {**good, "step": "7"}, "step: Input should be a valid integer"),
        ("/get_reward", {**good, "step": -1}, "step: Input should be greater than or equal to 0"),
        ("/get_reward", {**good, "labels": ["3"]}, "'labels' has 1 items"),
        ("/score", {"records": [rec, {**rec, "num_tokens": -2}]}, "records[1]: 'num_tokens' must be"),
        ("/score", {"records": [rec, {**rec, "step": 10**20}]}, "records[1]: 'step' must be"),
        ("/score", {"records": [rec, {**rec, "meta": {}}]}, "meta.rm must be a finite number"),  # fails after HAPO ran
    ]
    states = {}
    rewards = {}
    for name, send_bad in (("attacked", True), ("twin", False)):
        state = tmp_path / f"{name}.json"
        app = create_app({**STATEFUL, "state": str(state)}, token=TOKEN, save_every_s=3600, group_size=2)
        with running(app) as url:
            scored = [
                httpx.post(
                    f"{url}/score",
                    json={"records": [rec, {**rec, "completion": "x y ####3", "meta": {"rm": 1.0}}]},
                    headers=AUTH,
                    timeout=30,
                )
            ]
            app.state.pipeline.save_state()
            before = state.read_bytes()
            if send_bad:
                for path, body, message in bad:
                    r = httpx.post(f"{url}{path}", json=body, headers=AUTH, timeout=30)
                    assert r.status_code == 422 and message in r.text, (body, r.text)
                r = httpx.post(
                    f"{url}/get_reward", content=b'{"query": ["####3"], "labels": [NaN]}', headers=AUTH, timeout=30
                )
                assert r.status_code == 422 and "non-finite number NaN" in r.text
                app.state.pipeline.save_state()
                assert state.read_bytes() == before  # byte-identical saved state
            scored.append(
                httpx.post(
                    f"{url}/score",
                    json={"records": [rec, {**rec, "completion": "####3 ok", "meta": {"rm": 2.0}}]},
                    headers=AUTH,
                    timeout=30,
                )
            )
        assert all(r.status_code == 200 for r in scored)
        rewards[name] = [[x["reward"] for x in r.json()["records"]] for r in scored]
        states[name] = json.loads(state.read_text())
    assert rewards["attacked"] == rewards["twin"] and states["attacked"] == states["twin"]  # identical next rewards
    assert states["twin"]["step"] == 2


def test_a_hanging_item_delays_only_its_own_request():
    """Three requests each hold an item that hangs (more than the 2 verifier processes); a normal
    request sent after them is answered while they still wait out their own timeout."""
    spec = {
        "verifier": {"name": "math", "extract": ["boxed"], "inner_timeout_s": 60},
        "timeout_s": 15,
        "workers": 2,
        "length_unit": "words",
    }
    with running(create_app(spec, token=TOKEN, max_concurrency=8)) as url:

        def post(query: list[str], labels: list[str]) -> httpx.Response:
            return httpx.post(f"{url}/get_reward", json={"query": query, "labels": labels}, headers=AUTH, timeout=120)

        assert post(["\\boxed{1}", "\\boxed{2}"], ["1", "2"]).json()["rewards"] == [1.0, 1.0]
        hanging = [threading.Thread(target=post, args=([TOWER, f"\\boxed{{{k}}}"], ["1", str(k)])) for k in range(3)]
        for t in hanging:
            t.start()
        time.sleep(1.0)  # the towers are being verified now
        other = post(["\\boxed{7}"], ["7"])
        assert other.json()["rewards"] == [1.0]
        assert all(t.is_alive() for t in hanging)  # answered before any hanging request's own timeout ran out
        for t in hanging:
            t.join(timeout=120)


def test_serve_refuses_token_on_the_command_line_and_reads_a_token_file(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(EXACT))
    refused = subprocess.run(
        [sys.executable, "-m", "rewardsmith", "serve", "--spec", str(spec), "--token", TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        refused.returncode == 2 and "visible to every local user" in refused.stderr and "--token-file" in refused.stderr
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    out = subprocess.run(
        [sys.executable, "-m", "rewardsmith", "serve", "--spec", str(spec), "--token-file", str(empty)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "is empty" in out.stderr
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("REWARDSMITH_TOKEN", None)
    proc, url = start_serve(str(spec), "--token-file", str(token_file), env=env)
    try:
        assert (
            httpx.post(f"{url}/get_reward", json={"query": ["####2"], "labels": ["2"]}, timeout=10).status_code == 401
        )
        assert httpx.post(
            f"{url}/get_reward", json={"query": ["####2"], "labels": ["2"]}, headers=AUTH, timeout=30
        ).json()["rewards"] == [1.0]
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output


def test_token_from_the_environment_is_not_inherited_by_verifier_processes(monkeypatch):
    from rewardsmith.integrations.server_cli import TOKEN_ENV, read_token

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert read_token(None) == TOKEN and TOKEN_ENV not in os.environ
