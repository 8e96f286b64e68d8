"""The code verifier's sandbox and harness, attacked with real programs in real processes.

Hostile programs here only ever run through the verifier with isolation on: a ``kill(-1, 9)``
run unisolated as root would take the machine's other processes with it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.registry import SpecError
from rewardsmith.verifiers import sandbox as sandbox_module
from rewardsmith.verifiers.base import ERROR, OK
from rewardsmith.verifiers.code import CodeVerifier, choose_sandbox
from rewardsmith.verifiers.code_harness import split_asserts
from rewardsmith.verifiers.sandbox import (
    BubblewrapSandbox,
    UnisolatedSandbox,
    probe_bwrap,
)

ISOLATED, WHY = probe_bwrap()
needs_isolation = pytest.mark.skipif(ISOLATED is None, reason=f"no working bubblewrap here: {WHY}")
SECRET = "7461932805"  # an expected output no program computes


def run(program: str, tests, **opts):
    v = CodeVerifier(**opts)
    return v.check(v.job(f"```python\n{program}\n```", None, {"tests": tests}))


# ---------------------------------------------------------------- splitting assert tests
def test_split_asserts_lifts_only_what_needs_the_program():
    t = split_asserts("assert add(1, 2) == 3")
    assert t.probes == ("add(1, 2)",) and t.asserts == ("assert __rewardsmith_probe_0 == 3",)
    t = split_asserts("import math\nassert math.isclose(f(0.5), 0.25) and sorted(g([2, 1])) == [1, 2]")
    assert t.imports == ("import math",) and t.probes == ("f(0.5)", "g([2, 1])")
    assert t.asserts == (
        "assert math.isclose(__rewardsmith_probe_0, 0.25) and sorted(__rewardsmith_probe_1) == [1, 2]",
    )
    t = split_asserts("assert Solution().two_sum([2, 7], 9)[0] == 0\nassert abs(area(2) - 12.56) < 0.01")
    assert t.probes == ("Solution().two_sum([2, 7], 9)[0]", "area(2)")
    # a standard-library module used as module.attr stays with the judge even without an import
    assert split_asserts("assert heapq.nsmallest(1, f()) == [0]").probes == ("f()",)
    with pytest.raises(ValueError, match="bound inside the assert"):
        split_asserts("assert all(f(x) == x for x in range(3))")
    with pytest.raises(ValueError, match="only import and assert"):
        split_asserts("x = f(1)\nassert x == 2")
    with pytest.raises(ValueError, match="no assert"):
        split_asserts("import math")


# ---------------------------------------------------------------- honest programs still pass
@needs_isolation
def test_assert_tests_pass_for_exact_builtin_values():
    program = (
        "def f(n):\n"
        "    return {'big': 2 ** 200, 'x': 0.1 + 0.2, 't': (1, 'é'), 's': {1, 2}, 'b': b'\\x00', 'n': None}\n"
        "def g(x):\n    return x > 2\n"
    )
    tests = [
        "assert f(0) == {'big': 2 ** 200, 'x': 0.30000000000000004, 't': (1, 'é'), 's': {2, 1}, "
        "'b': b'\\x00', 'n': None}",
        "import math\nassert math.isclose(f(0)['x'], 0.3)",
        "assert g(3)\nassert not g(1)",
        "assert g(3) == 2",  # wrong on purpose
    ]
    out = run(program, tests)
    assert (out.score, out.status) == (0.75, OK) and out.detail == "3/4 tests passed; test 3: assertion 0 failed"


# ---------------------------------------------------------------- the harness cannot be fooled
EXPLOITS = {
    # early exits, before or while the tests' values are computed
    "raise SystemExit": "raise SystemExit(0)",
    "exit in the solution": "import sys\ndef add(a, b):\n    sys.exit(0)",
    "os._exit in the solution": "import os\ndef add(a, b):\n    os._exit(0)",
    "kill itself": "import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)",
    # forcing the exit status after a failure
    "atexit": "import atexit, os\natexit.register(lambda: os._exit(0))\n"
    "def add(a, b):\n    return 0\nraise RuntimeError",
    "excepthook": "import sys\nsys.excepthook = lambda *a: None\ndef add(a, b):\n    raise ValueError('no')",
    # values that claim to equal anything
    "int subclass": "class I(int):\n    def __eq__(self, other):\n        return True\n"
    "    __hash__ = int.__hash__\ndef add(a, b):\n    return I(0)",
    "str subclass": "class S(str):\n    __eq__ = lambda self, other: True\n"
    "    __hash__ = str.__hash__\ndef add(a, b):\n    return S('x')",
    "truthy object": "class T:\n    __bool__ = lambda self: True\n    __eq__ = lambda self, o: True\n"
    "def add(a, b):\n    return T()",
    # patched builtins and hooks: the judge never runs in this process
    "patched builtins": "import builtins\nbuiltins.abs = lambda x: 0\n"
    "builtins.AssertionError = type('Never', (Exception,), {})\ndef add(a, b):\n    return 0",
    "shadowed module": "class math:\n    isclose = staticmethod(lambda *a, **k: True)\ndef add(a, b):\n    return 0",
    # posing as a sandbox failure (an error verdict instead of a 0)
    "fake setup failure": "import os\nos.write(2, b'rewardsmith-sandbox: setup failed\\n')\nos._exit(125)",
    # forged result lines on the channel
    "forged channel": "import os\nfor fd in range(3, 20):\n    try:\n"
    """        os.write(fd, b'[["v", ["b", true]]]\\n[["v", ["i", "*"]]]\\n')\n"""
    "    except OSError:\n        pass\nos._exit(0)",
    # reading the test: only the values it needs are in the sandbox, and /proc shows only the sandbox
    "read the tests": (
        f"import os\nfound = []\nneedle = '{SECRET[::-1]}'[::-1].encode()  # not in its own source\n"
        "for root in ('/proc', '/tmp', os.getcwd()):\n"
        "    for base, dirs, files in os.walk(root):\n"
        "        for name in files:\n"
        "            if name in ('cmdline', 'environ') or root != '/proc':\n"
        "                try:\n"
        "                    data = open(os.path.join(base, name), 'rb').read()\n"
        "                    found += [x for x in data.split() if needle in x]\n"
        "                except OSError:\n"
        "                    pass\n"
        "        if base.count('/') > 3:\n"
        "            dirs.clear()\n"
        "def add(a, b):\n    return int(found[0].decode().strip('=,()[]{}\"') if found else 0)"
    ),
}
EXPLOIT_TESTS = [
    f"assert add(1, 2) == {SECRET}",
    f"import math\nassert math.isclose(add(2, 3), {SECRET})",
    f"assert abs(add(3, 4) - {SECRET}) < 1",
]


@needs_isolation
@pytest.mark.parametrize("name", list(EXPLOITS))
def test_harness_exploits_score_zero(name):
    out = run(EXPLOITS[name], EXPLOIT_TESTS, timeout_s=2.0, max_total_s=8.0)
    assert (out.score, out.status) == (0.0, OK), out.detail


@needs_isolation
def test_exploit_tests_pass_for_the_right_values():
    out = run(f"def add(a, b):\n    return {SECRET} if a == 1 else {SECRET}.0", EXPLOIT_TESTS)
    assert (out.score, out.detail) == (1.0, "3/3 tests passed")  # the exploits' tests are passable


@needs_isolation
def test_the_test_reader_finds_what_is_in_its_view():
    # control for "read the tests": a value in the program's own input is found and returned
    out = run(EXPLOITS["read the tests"], [f"assert add(1, {SECRET}) == {SECRET}"], timeout_s=2.0)
    assert out.score == 1.0, out.detail


@needs_isolation
def test_stdin_tests_hide_the_expected_output():
    reader = EXPLOITS["read the tests"] + "\nprint(add(0, 0))"
    assert run(reader, [{"input": "1 2\n", "output": SECRET}], timeout_s=2.0).score == 0.0


# ---------------------------------------------------------------- isolation
@needs_isolation
def test_program_runs_as_an_unprivileged_uid_without_capabilities():
    program = (
        "import os\nlines = open('/proc/self/status').read().splitlines()\n"
        "status = dict(line.split(':\\t') for line in lines if ':\\t' in line)\n"
        "print(os.getuid(), os.getgid(), status['CapEff'], status['CapBnd'])\n"
        "print(' '.join(sorted(os.listdir('/'))))\nprint(len(os.listdir('/proc')) < 60)"
    )
    out = ISOLATED.run({"runner.py": program}, b"", CodeVerifier(allow_unisolated=True)._limits(5.0))
    assert out.returncode == 0, out.stderr
    ids, top, few = out.stdout.decode().splitlines()
    assert ids == "65534 65534 0000000000000000 0000000000000000"  # no capabilities, not even in the bounding set
    allowed = {"bin", "sbin", "lib", "lib32", "lib64", "usr", "proc", "dev", "tmp"}
    allowed |= {d.split("/")[1] for d in sandbox_module._python_dirs()}
    assert set(top.split()) <= allowed and few == "True"  # only system and Python paths; a fresh /proc


@needs_isolation
@pytest.mark.skipif(os.geteuid() != 0, reason="reading a root-only file needs the tests to run as root")
def test_root_only_file_is_unreadable_even_where_mounted(monkeypatch):
    secret_dir = Path(tempfile.mkdtemp(dir="/var/tmp"))  # outside /tmp, which is the program's own
    os.chmod(secret_dir, 0o755)
    (secret_dir / "key").write_text(SECRET)
    os.chmod(secret_dir / "key", 0o600)
    assert os.stat(secret_dir / "key").st_uid == 0
    real_dirs = sandbox_module._python_dirs
    monkeypatch.setattr(
        sandbox_module, "_python_dirs", lambda: [*real_dirs(), str(secret_dir)]
    )  # mount it read-only inside
    key = str(secret_dir / "key")
    program = f"import os\nprint(os.path.exists({key!r}))\nprint(open({key!r}).read())"
    # Why the switch to uid 65534 comes first: bubblewrap started as root maps the sandbox user to root.
    as_root = [
        ISOLATED.bwrap,
        "--unshare-user",
        "--uid",
        "65534",
        "--ro-bind",
        "/",
        "/",
        "cat",
        str(secret_dir / "key"),
    ]
    try:
        naive = subprocess.run(as_root, capture_output=True, text=True, timeout=30, check=False)
        out = run(program, [{"input": "", "output": f"True\n{SECRET}"}])
    finally:
        shutil.rmtree(secret_dir)
    assert naive.stdout == SECRET  # owner access to root's file from "uid 65534" in a root-made namespace
    assert out.score == 0.0 and "PermissionError" in out.detail


@needs_isolation
def test_socket_connect_fails(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    program = (
        "import socket\n"
        "for host in ('127.0.0.1', '1.1.1.1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1)\n"
        "        print('connected')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)"
    )
    out = run(program, [{"input": "", "output": "connected\nconnected"}], timeout_s=5.0)
    assert out.score == 0.0
    with pytest.raises(BlockingIOError):
        server.accept()  # nothing ever reached the real loopback
    server.close()


@needs_isolation
def test_kill_all_beside_an_honest_rollout_in_one_batch():
    spec = {
        "verifier": {"name": "code", "timeout_s": 3.0, "max_total_s": 6.0},
        "timeout_s": 20,
        "workers": 2,
        "length_unit": "words",
    }
    tests = {"tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 5\n", "output": "9\n"}]}
    killer = (
        "```python\nimport os, signal, time\nfor _ in range(50):\n    try:\n        os.kill(-1, signal.SIGKILL)\n"
        "    except OSError:\n        pass\n    time.sleep(0.01)\n```"
    )
    honest = "```python\nimport time\ntime.sleep(0.3)\na, b = map(int, input().split())\nprint(a + b)\n```"
    records = [{"prompt_id": "p", "completion": c, "meta": tests} for c in [killer, honest, killer, honest]]
    with load_spec(spec) as pipe:
        scores = pipe.score(records)
        assert pipe.engine.stats.workers_replaced == 0
    assert scores.total.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert scores.status == [OK] * 4


@needs_isolation
def test_bombs_and_endless_output_are_contained_and_tmp_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bombs = {
        "fork bomb": "import os\nwhile True:\n    os.fork()",
        "thread bomb": "import threading, time\nwhile True:\n"
        "    threading.Thread(target=time.sleep, args=(9,)).start()",
        "memory bomb": "x = []\nwhile True:\n    x.append(bytearray(2 ** 26))",
        "endless output": "import sys\nwhile True:\n    sys.stderr.write('x' * 65536)\n    print('y' * 65536)",
        "file filler": "with open('/tmp/big', 'wb') as f:\n    while True:\n        f.write(b'z' * 65536)",
        "leftovers": "open('/tmp/left', 'w').write('x')\nopen('here', 'w').write('x')\nprint(1)",
    }
    for name, program in bombs.items():
        out = run(program, [{"input": "", "output": SECRET}], timeout_s=2.0, max_output_kb=256, memory_mb=256)
        assert (out.score, out.status) == (0.0, OK), (name, out.detail)
    assert os.listdir(tmp_path) == []  # every private /tmp is gone


@needs_isolation
def test_world_writable_places_of_the_host_stay_untouched():
    name = f"rewardsmith-leak-{os.getpid()}"
    targets = [f"/var/tmp/{name}", f"/dev/shm/{name}", f"/run/{name}", f"/usr/{name}", f"{sys.prefix}/{name}"]
    program = (
        "import sys\nfor path in sys.argv[1:] or %r:\n    try:\n        open(path, 'w').write('x')\n"
        "    except OSError:\n        pass\nprint('done')".replace("%r", repr(targets))
    )
    assert run(program, [{"input": "", "output": "done"}]).score == 1.0
    assert [t for t in targets if os.path.exists(t)] == []
    try:  # control: the same harmless program without the sandbox does leave a file behind
        assert run(program, [{"input": "", "output": "done"}], sandbox="none", allow_unisolated=True).score == 1.0
        assert os.path.exists(targets[0])
    finally:
        for t in targets:
            if os.path.exists(t):
                os.remove(t)


# ---------------------------------------------------------------- no isolation: refuse unless allowed
def test_refuses_unisolated_runs_unless_allowed(monkeypatch, caplog):
    monkeypatch.setattr("rewardsmith.verifiers.code.probe_bwrap", lambda: (None, "no bwrap binary"))
    with pytest.raises(SpecError, match="no isolation .*no bwrap binary.*allow_unisolated"):
        CodeVerifier()
    with pytest.raises(SpecError, match="no isolation"):
        load_spec({"verifier": {"name": "code", "sandbox": "bwrap", "allow_unisolated": True}})
    with pytest.raises(SpecError, match="needs allow_unisolated"):
        CodeVerifier(sandbox="none")
    with pytest.raises(SpecError, match="needs sandbox_url"):
        CodeVerifier(sandbox="piston")
    with caplog.at_level(logging.WARNING, logger="rewardsmith.code"):
        v = CodeVerifier(allow_unisolated=True)
    assert isinstance(v.sandbox, UnisolatedSandbox) and "UNISOLATED" in caplog.text
    # an honest program still scores (no hostile code runs unisolated here)
    out = v.check(
        v.job(
            "```python\ndef add(a, b):\n    return a + b\n```",
            None,
            {"tests": ["assert add(1, 2) == 3", "assert add(1, 1) == 3"]},
        )
    )
    assert (out.score, out.status) == (0.5, OK)


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop happens only as root")
def test_unisolated_setup_failure_is_an_error_not_a_score(monkeypatch):
    import rewardsmith.verifiers.code as code_module

    monkeypatch.setattr(code_module, "NOBODY", 2**40)  # setgid fails in the runner
    out = run("print(1)", [{"input": "", "output": "1"}], sandbox="none", allow_unisolated=True)
    assert out.status == ERROR and np.isnan(out.score) and out.detail.startswith("rewardsmith-sandbox: setup failed")


def test_a_sandbox_that_cannot_start_is_an_error_never_an_unisolated_run():
    v = CodeVerifier.__new__(CodeVerifier)
    v.options, v.sandbox = CodeVerifier.Options(), BubblewrapSandbox("/nonexistent/bwrap")
    out = v.check(v.job("```python\nprint(1)\n```", None, {"tests": [{"input": "", "output": "1"}]}))
    assert out.status == ERROR and np.isnan(out.score) and out.detail.startswith("bwrap: cannot start")
    assert (
        choose_sandbox(CodeVerifier.Options(sandbox="sandbox_fusion", sandbox_url="http://127.0.0.1:9")).name
        == "sandbox_fusion"
    )


@needs_isolation
def test_bench_smoke_prints_the_isolation_cost():
    bench = Path(__file__).resolve().parents[1] / "bench" / "code_sandbox.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--items", "1"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^stdin/stdout +isolation cost: [\d.]+x, [+-][\d.]+ ms/item", proc.stdout, re.MULTILINE), (
        proc.stdout
    )
    assert re.search(r"^asserts +isolation cost: [\d.]+x", proc.stdout, re.MULTILINE), proc.stdout


def test_a_python_under_tmp_stays_visible_over_the_private_tmp(tmp_path, monkeypatch):
    """bwrap mounts in order: the item's private /tmp must come before the interpreter's prefixes, or a venv
    under /tmp (a clone there) is hidden and the runner cannot start (found on a clean clone in /tmp)."""
    from rewardsmith.verifiers import sandbox

    monkeypatch.setattr(sandbox, "_python_dirs", lambda: ["/tmp/clone/.venv"])
    (tmp_path / "item").mkdir()
    argv, _, _ = sandbox.BubblewrapSandbox("bwrap")._command(str(tmp_path / "item"), str(tmp_path / "work"))
    private_tmp = next(i for i in range(len(argv) - 2) if argv[i] == "--bind" and argv[i + 2] == "/tmp")
    venv = next(i for i in range(len(argv) - 2) if argv[i] == "--ro-bind" and argv[i + 2] == "/tmp/clone/.venv")
    assert private_tmp < venv
