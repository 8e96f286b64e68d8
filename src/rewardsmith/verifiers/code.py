"""``code``: run the extracted Python program against test cases in a sandboxed subprocess.

The program is the last fenced Python block of the completion (```python, ```py,
```python3; with ``any_fence: true`` the last fenced block of any kind). Tests come from
``meta.tests``, in one of three shapes:

- ``[{"input": "1 2\\n", "output": "3\\n"}, ...]``: stdin → expected stdout;
- ``["assert add(1, 2) == 3", ...]``: the statement is appended to the program and passes
  when the program exits with status 0;
- ``{"inputs": [...], "outputs": [...]}`` (APPS-style columns).

Score = fraction of tests passed (``all_or_nothing``: 1 if all pass, else 0, stopping at
the first failure). Output comparison (``compare``): ``lines`` (trailing whitespace per line
and trailing blank lines ignored), ``tokens`` (whitespace-separated tokens) or ``exact``.

Each test runs in a fresh ``python -I`` process (isolated mode: no PYTHON* variables, no user
site, no script directory on the path) started in a new session, with a stripped
environment, a fresh temporary working directory, stdin/stdout/stderr redirected to files,
and — for the program only — ``RLIMIT_CPU`` (per-test timeout, rounded up), ``RLIMIT_AS``
(``memory_mb``), ``RLIMIT_FSIZE`` (``max_output_kb``: caps stdout, stderr and any file it
writes), ``RLIMIT_NOFILE`` 64, no core dumps, and ``RLIMIT_NPROC`` = ``max_processes`` (1:
it can start no process or thread). The program runs in a forked child of a small launcher,
so ``os.getppid()`` is the launcher, never the verifier; both die with their parent
(``PR_SET_PDEATHSIG``) and the whole session is killed after each test. When the verifier
runs as root (where RLIMIT_NPROC does not apply), the program runs as user ``nobody``
keeping only ``CAP_DAC_READ_SEARCH`` (so it can still import the standard library under a
private home directory): it cannot signal other users' processes, exceed RLIMIT_NPROC or
write outside world-writable places. Not contained without OS sandboxing (containers):
reading world-readable files, and ``os.kill(-1, ...)`` against the verifier's own user when
that is not root. A wall-clock timeout per test (``timeout_s``) and a budget per completion
(``max_total_s``: tests left when it runs out fail) keep one item inside the engine's hard
per-item timeout — give the spec a ``timeout_s`` above ``max_total_s``.

    >>> from rewardsmith.verifiers.code import CodeVerifier
    >>> v = CodeVerifier()
    >>> completion = "```python\\na, b = map(int, input().split())\\nprint(a + b)\\n```"
    >>> tests = [{"input": "1 2\\n", "output": "3\\n"}, {"input": "2 2\\n", "output": "5\\n"}]
    >>> verdict = v.check(v.job(completion, None, {"tests": tests}))
    >>> verdict.score, verdict.detail
    (0.5, '1/2 tests passed; test 1: wrong answer')
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, ERROR, NO_ANSWER, OK, Job, Verdict, Verifier

_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}
_SETUP_FAILED = 125  # the launcher's exit status when it could not set the sandbox up
_NOBODY = 65534

# Runs as ``python -I -c _LAUNCHER CONFIG``: reads the program, forks; the child applies the
# limits, drops privileges when root, then executes the program in its own namespace; the
# parent waits and exits with the child's status (128 + signal when it was killed).
_LAUNCHER = r"""
import ctypes, json, os, resource, signal, sys, types

def fail(msg):
    os.write(2, ("rewardsmith-sandbox: " + msg + "\n").encode())
    os._exit(125)

def die_with(parent):
    if prctl is not None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:
        os._exit(137)

def limit(res, value):
    hard = resource.getrlimit(res)[1]
    value = value if hard == resource.RLIM_INFINITY or os.geteuid() == 0 else min(value, hard)
    resource.setrlimit(res, (value, value))

try:
    cfg = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(libc, "prctl", None)
    die_with(cfg["parent"])
    with open(cfg["program"], encoding="utf-8") as f:
        source = f.read()
    me = os.getpid()
    child = os.fork()
except Exception as exc:
    fail("launcher failed: %r" % exc)
if child == 0:
    try:
        for name, value in cfg["limits"].items():
            limit(getattr(resource, name), value)
        if os.geteuid() == 0 and cfg["drop_to"] is not None:
            class Hdr(ctypes.Structure):
                _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
            class Caps(ctypes.Structure):
                _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
            if prctl is None or prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
                fail("cannot keep capabilities across setuid (needs Linux prctl)")
            os.setgroups([])
            os.setgid(cfg["drop_to"])
            os.setuid(cfg["drop_to"])
            caps = (Caps * 2)()
            caps[0].effective = caps[0].permitted = 1 << 2  # CAP_DAC_READ_SEARCH only
            if libc.capset(ctypes.byref(Hdr(0x20080522, 0)), caps) != 0:
                fail("capset failed (errno %d)" % ctypes.get_errno())
        if cfg["nproc"] is not None:
            limit(resource.RLIMIT_NPROC, cfg["nproc"])
        die_with(me)
    except Exception as exc:
        fail("setup failed: %r" % exc)
    main = types.ModuleType("__main__")
    sys.modules["__main__"], sys.argv = main, ["main.py"]
    exec(compile(source, "main.py", "exec"), main.__dict__)
    sys.exit(0)
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))  # stop even a program that left the group
_, status = os.waitpid(child, 0)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class TestCase:
    stdin: str
    expected: str | None  # expected stdout; None for an assert-style test
    code: str = ""  # appended to the program (assert-style)


@dataclass(frozen=True)
class RunResult:
    passed: bool
    reason: str  # "" when passed


def extract_program(completion: str, any_fence: bool = False) -> str | None:
    """The last fenced Python block (any fenced block with ``any_fence``), or None."""
    blocks = [(tag.strip().lower(), body) for tag, body in _FENCE.findall(completion)]
    for tag, body in reversed(blocks):
        if (tag in _PYTHON_TAGS or any_fence) and body.strip():
            return body
    return None


def parse_tests(raw: Any) -> list[TestCase]:
    """Tests from ``meta.tests`` (see the module docstring); ValueError when unreadable."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if isinstance(raw, dict) and "inputs" in raw and "outputs" in raw:
        if len(raw["inputs"]) != len(raw["outputs"]):
            raise ValueError("tests: 'inputs' and 'outputs' differ in length")
        raw = [{"input": i, "output": o} for i, o in zip(raw["inputs"], raw["outputs"])]
    if not isinstance(raw, list) or not raw:
        raise ValueError("tests must be a non-empty list")
    tests = []
    for t in raw:
        if isinstance(t, str):
            tests.append(TestCase("", None, t))
        elif isinstance(t, dict) and "output" in t:
            tests.append(TestCase(_text(t.get("input", "")), _text(t["output"])))
        else:
            raise ValueError(f"a test must be an assert string or {{'input', 'output'}}: {str(t)[:80]}")
    return tests


def _text(value: Any) -> str:
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)


def outputs_match(got: str, expected: str, compare: str) -> bool:
    if compare == "exact":
        return got == expected
    if compare == "tokens":
        return got.split() == expected.split()
    lines = lambda s: [ln.rstrip() for ln in s.rstrip().splitlines()]  # noqa: E731
    return lines(got) == lines(expected)


def _clean_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "HOME": workdir, "TMPDIR": workdir, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


class CodeOptions(Options):
    timeout_s: float = Field(default=2.0, gt=0, le=60, description="wall-clock limit per test (CPU limit: rounded up)")
    max_total_s: float = Field(default=4.0, gt=0, description="budget for all tests of one completion; keep it below the spec's timeout_s")
    memory_mb: int = Field(default=1024, ge=64, description="RLIMIT_AS of the program, MiB")
    max_output_kb: int = Field(default=1024, ge=1, description="RLIMIT_FSIZE: most KiB the program may write to stdout, stderr or a file")
    max_processes: int | None = Field(default=1, ge=1, description="RLIMIT_NPROC (counted per user): 1 = no new process or thread; null = no limit")
    drop_privileges: bool = Field(default=True, description="when root, run the program as 'nobody' with CAP_DAC_READ_SEARCH only (as root without it, RLIMIT_NPROC has no effect)")
    all_or_nothing: bool = Field(default=False, description="score 1 only when every test passes (stops at the first failure)")
    compare: Literal["lines", "tokens", "exact"] = "lines"
    any_fence: bool = Field(default=False, description="take the last fenced block even when it is not tagged python")


@register("verifier", "code", "Runs the last ```python block against meta.tests (stdin/stdout or asserts) in a resource-limited subprocess; fraction passed.", "unit-test pass rate (RLVR for code; no single paper)")
class CodeVerifier(Verifier):
    Options = CodeOptions

    def extract(self, completion: str) -> str | None:
        return extract_program(completion, self.options.any_fence)

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        # Always a job: the tests live in meta, so "no program" must be decided by ``check``
        # (the pipeline would read a missing ``answer`` as a missing reference).
        return Job(self.extract(completion) or "", None, {"tests": meta.get("tests")})

    def check(self, job: Job) -> Verdict:
        o = self.options
        try:
            tests = parse_tests((job.meta or {}).get("tests"))
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return Verdict(float("nan"), BAD_REFERENCE, f"meta.tests: {exc}")
        if not job.prediction.strip():
            return Verdict(0.0, NO_ANSWER, "no ```python block found")
        passed, first_failure = 0, ""
        start = time.monotonic()
        root = tempfile.mkdtemp(prefix="rewardsmith-code-")
        try:
            for i, test in enumerate(tests):
                left = o.max_total_s - (time.monotonic() - start)
                if left <= 0.05:
                    result = RunResult(False, "not run: time budget spent")
                else:
                    result = self._run(job.prediction, test, os.path.join(root, str(i)), min(o.timeout_s, left))
                if result.reason.startswith("rewardsmith-sandbox:"):
                    return Verdict(float("nan"), ERROR, result.reason)
                if result.passed:
                    passed += 1
                elif not first_failure:
                    first_failure = f"test {i}: {result.reason}"
                    if o.all_or_nothing:
                        break
        finally:
            shutil.rmtree(root, ignore_errors=True)
        n = len(tests)
        score = float(passed == n) if o.all_or_nothing else passed / n
        detail = f"{passed}/{n} tests passed" + (f"; {first_failure}" if first_failure else "")
        return Verdict(score, OK, detail)

    def _run(self, program: str, test: TestCase, root: str, timeout: float) -> RunResult:
        o = self.options
        work = os.path.join(root, "work")
        os.makedirs(work)
        os.chmod(work, 0o777)  # writable by the unprivileged program
        source = program if test.expected is not None else f"{program}\n\n{test.code}\n"
        paths = {name: os.path.join(root, name) for name in ("main.py", "stdin", "stdout", "stderr")}
        with open(paths["main.py"], "w", encoding="utf-8") as f:
            f.write(source)
        with open(paths["stdin"], "w", encoding="utf-8") as f:
            f.write(test.stdin)
        cap = o.max_output_kb * 1024
        limits = {"RLIMIT_CPU": math.ceil(timeout), "RLIMIT_AS": o.memory_mb * 2**20, "RLIMIT_FSIZE": cap + 1, "RLIMIT_NOFILE": 64, "RLIMIT_CORE": 0}
        cfg = {"parent": os.getpid(), "program": paths["main.py"], "limits": limits, "nproc": o.max_processes, "drop_to": _NOBODY if o.drop_privileges else None}
        with open(paths["stdin"], "rb") as fin, open(paths["stdout"], "wb") as fout, open(paths["stderr"], "wb") as ferr:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _LAUNCHER, json.dumps(cfg)], cwd=work, env=_clean_env(work),
                stdin=fin, stdout=fout, stderr=ferr, start_new_session=True, close_fds=True,
            )
        timed_out = _wait_then_kill_group(proc, timeout)
        with open(paths["stdout"], "rb") as f:
            out = f.read(cap + 1)
        with open(paths["stderr"], "rb") as f:
            err_bytes = f.read(cap + 1)
        err = err_bytes.decode("utf-8", "replace")
        if proc.returncode == _SETUP_FAILED and err.startswith("rewardsmith-sandbox:"):
            return RunResult(False, err.strip())
        if timed_out:
            return RunResult(False, f"timeout ({timeout:.3g}s)")
        if len(out) > cap or len(err_bytes) > cap:
            return RunResult(False, f"output limit ({o.max_output_kb} KiB)")
        if proc.returncode != 0:
            return RunResult(False, _failure(proc.returncode, err))
        if test.expected is None:
            return RunResult(True, "")
        got = out.decode("utf-8", "replace")
        return RunResult(True, "") if outputs_match(got, test.expected, o.compare) else RunResult(False, "wrong answer")


def _wait_then_kill_group(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` for the launcher, then kill its whole session; True if it timed out.

    On timeout the launcher is asked (SIGTERM) to kill and reap the program first, which
    reaches a program that left the process group. The launcher is not reaped before
    ``killpg`` (a pidfd tells when it exits), so its group id cannot have been reused.
    """
    timed_out = not _exited(proc, timeout)
    if timed_out:
        proc.send_signal(signal.SIGTERM)
        _exited(proc, 1.0)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    return timed_out


def _exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Whether ``proc`` exits within ``timeout``, without reaping it where pidfds exist."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _failure(returncode: int, stderr: str) -> str:
    if returncode > 128:
        sig = returncode - 128
        name = {signal.SIGXCPU: "CPU time limit", signal.SIGKILL: "killed", signal.SIGXFSZ: "file size limit", signal.SIGSEGV: "segmentation fault"}.get(sig, f"signal {sig}")
        return f"runtime error ({name})"
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    return f"runtime error (exit {returncode}: {last[:120]})" if last else f"runtime error (exit {returncode})"
