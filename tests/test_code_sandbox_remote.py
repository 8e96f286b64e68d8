"""Remote sandbox clients against a real HTTP server on loopback.

SandboxFusion and Piston cannot run here, so the server below speaks their documented APIs
(SandboxFusion ``sandbox/server/sandbox_api.py``: ``RunCodeRequest``/``RunCodeResponse``; Piston
``docs/api-v2.md``: ``POST /api/v2/execute``): it validates every request field against those
schemas (rejecting like the real servers: 422 with ``detail``, 400 with ``message``), runs the
files for real in the local bubblewrap sandbox and answers in the documented response shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from rewardsmith.verifiers.base import ERROR, OK
from rewardsmith.verifiers.code import CodeVerifier
from rewardsmith.verifiers.sandbox import Limits, probe_bwrap

ISOLATED, WHY = probe_bwrap()
pytestmark = pytest.mark.skipif(ISOLATED is None, reason=f"the test server runs programs in bubblewrap: {WHY}")
FUSION_LANGUAGES = {"python", "pytest", "cpp", "go", "java", "nodejs", "bash"}  # a subset of its Language enum


def _fusion_problems(body) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    problems = [f"{k} must be a string" for k in ("code", "language") if not isinstance(body.get(k), str)]
    if body.get("language") not in FUSION_LANGUAGES:
        problems.append("language: not a valid enumeration member")
    for key in ("compile_timeout", "run_timeout"):
        if key in body and (not isinstance(body[key], (int, float)) or isinstance(body[key], bool)):
            problems.append(f"{key} must be a number")
    if "memory_limit_MB" in body and type(body["memory_limit_MB"]) is not int:
        problems.append("memory_limit_MB must be an integer")
    if body.get("stdin") is not None and not isinstance(body["stdin"], str):
        problems.append("stdin must be a string or null")
    files = body.get("files", {})
    if not isinstance(files, dict):
        problems.append("files must map paths to base64")
    else:
        for name, content in files.items():
            try:
                content is None or base64.b64decode(content, validate=True)
            except (binascii.Error, TypeError):
                problems.append(f"files[{name}] is not base64")
    for key in ("fetch_files", "args"):
        if key in body and not (isinstance(body[key], list) and all(isinstance(x, str) for x in body[key])):
            problems.append(f"{key} must be a list of strings")
    return problems


def _piston_problems(body) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    problems = [f"{k} is required as a string" for k in ("language", "version") if not isinstance(body.get(k), str)]
    files = body.get("files")
    if not isinstance(files, list) or not files:
        problems.append("files is required as an array")
    else:
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("content"), str):
                problems.append("files[].content is required")
            elif f.get("encoding", "utf8") not in ("base64", "hex", "utf8") or not isinstance(f.get("name", ""), str):
                problems.append("files[]: bad name or encoding")
    if not isinstance(body.get("stdin", ""), str):
        problems.append("stdin must be a string")
    if not (isinstance(body.get("args", []), list) and all(isinstance(a, str) for a in body.get("args", []))):
        problems.append("args must be an array of strings")
    for key in ("run_timeout", "compile_timeout", "run_memory_limit", "compile_memory_limit"):
        if key in body and (not isinstance(body[key], (int, float)) or isinstance(body[key], bool)):
            problems.append(f"{key} must be a number")
    if body.get("language") != "python":
        problems.append(f"{body.get('language')}-{body.get('version')} runtime is unknown")
    return problems


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict]] = []
        self.rejected = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        except (ValueError, TypeError):
            body = None
        self.server.requests.append((self.path, body))
        if self.path == "/run_code":
            problems = _fusion_problems(body)
            if problems:
                self.server.rejected += 1
                return self._answer(422, {"detail": [{"msg": p} for p in problems]})
            files = {name: base64.b64decode(c).decode() for name, c in body.get("files", {}).items() if c is not None}
            limits = Limits(float(body.get("run_timeout", 10)), max(int(body.get("memory_limit_MB", -1)), 256), 2**20)
            start = time.monotonic()
            out = ISOLATED.run({**files, "runner.py": body["code"]}, (body.get("stdin") or "").encode(), limits)
            run = {
                "status": "TimeLimitExceeded" if out.timed_out else "Finished",
                "execution_time": time.monotonic() - start,
                "return_code": None if out.timed_out else out.returncode,
                "stdout": out.stdout.decode("utf-8", "replace"),
                "stderr": out.stderr.decode("utf-8", "replace"),
            }
            ok = not out.timed_out and out.returncode == 0
            return self._answer(
                200,
                {
                    "status": "Success" if ok else "Failed",
                    "message": "",
                    "compile_result": None,
                    "run_result": run,
                    "executor_pod_name": None,
                    "files": {},
                },
            )
        if self.path == "/api/v2/execute":
            problems = _piston_problems(body)
            if problems:
                self.server.rejected += 1
                return self._answer(400, {"message": "; ".join(problems)})
            files = {
                ("runner.py" if i == 0 else f.get("name") or f"file{i}"): f["content"]
                for i, f in enumerate(body["files"])
            }
            limits = Limits(
                body.get("run_timeout", 3000) / 1000, max(body.get("run_memory_limit", -1) // 2**20, 256), 65536
            )
            out = ISOLATED.run(files, body.get("stdin", "").encode(), limits)
            stdout, stderr = out.stdout.decode("utf-8", "replace"), out.stderr.decode("utf-8", "replace")
            signal = "SIGKILL" if out.timed_out else None
            return self._answer(
                200,
                {
                    "language": "python",
                    "version": "3.11.7",
                    "run": {
                        "stdout": stdout,
                        "stderr": stderr,
                        "output": stdout + stderr,
                        "code": None if signal else out.returncode,
                        "signal": signal,
                    },
                },
            )
        self._answer(404, {"message": "not found"})


@pytest.fixture(scope="module")
def server():
    srv = _Server()
    yield srv
    srv.shutdown()


ADD = (
    "```python\nimport sys\ndef add(a, b):\n    return a + b\n"
    "numbers = sys.stdin.read().split()\nif numbers:\n    print(sum(map(int, numbers)))\n```"
)
TESTS = [
    {"input": "1 2\n", "output": "3\n"},
    {"input": "2 2\n", "output": "5\n"},
    "assert add(1, 2) == 3",
    "assert add(2, 2) == 31415926",
]


@pytest.mark.parametrize("backend", ["sandbox_fusion", "piston"])
def test_remote_backends_score_like_the_local_sandbox(server, backend):
    before = len(server.requests)
    remote = CodeVerifier(sandbox=backend, sandbox_url=server.url, timeout_s=3.0, max_total_s=20.0)
    local = CodeVerifier(timeout_s=3.0, max_total_s=20.0)
    for v in (remote, local):
        out = v.check(v.job(ADD, None, {"tests": TESTS}))
        assert (out.score, out.status, out.detail) == (0.5, OK, "2/4 tests passed; test 1: wrong answer")
    assert server.rejected == 0 and len(server.requests) == before + 5  # 4 runs and 1 judge, all valid requests
    sent = [json.dumps(body) for _, body in server.requests[before:]]
    assert [("31415926" in b) for b in sent] == [False] * 4 + [True]  # expected values reach only the judge
    hostile = {"exit": "import sys\nsys.exit(0)", "sleep": "import time\ntime.sleep(30)"}
    for program in hostile.values():
        out = remote.check(remote.job(f"```python\n{program}\n```", None, {"tests": ["assert add(1, 2) == 3"]}))
        assert (out.score, out.status) == (0.0, OK), out.detail


def test_remote_errors_are_errors_not_scores(server):
    v = CodeVerifier(sandbox="piston", sandbox_url=server.url, piston_version="3.x")
    v.sandbox.version = 3  # an invalid request: the server answers 400 with a message
    out = v.check(v.job(ADD, None, {"tests": TESTS[:1]}))
    assert out.status == ERROR and np.isnan(out.score) and "HTTP 400" in out.detail and "version" in out.detail
    dead = CodeVerifier(sandbox="sandbox_fusion", sandbox_url="http://127.0.0.1:9")
    out = dead.check(dead.job(ADD, None, {"tests": TESTS[:1]}))
    assert out.status == ERROR and "sandbox_fusion" in out.detail
