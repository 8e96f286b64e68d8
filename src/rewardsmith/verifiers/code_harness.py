"""The ``code`` verifier's harness: pass/fail is decided where the program cannot reach.

An assert-style test (``assert add(1, 2) == 3``) is split in two before anything runs:

- the *probes*, the sub-expressions that need the program (here ``add(1, 2)``: every call,
  attribute or subscript chain rooted in a name that is not a builtin, not imported by the test
  and not a standard-library module used as ``module.attr``), are the only part of the test the
  program ever sees. :data:`RUNNER` runs the program, evaluates each probe in its namespace
  and writes the values, converted to plain data of exact built-in types (``int``, ``float``,
  ``str``, ``bytes``, ``bool``, ``None``, ``complex``, ``list``, ``tuple``, ``dict``, ``set``,
  ``frozenset``; anything else, subclasses included, is an error), to its original stdout.
  The program's own prints go to stderr.
- the *judge*, a separate process in which the program never ran (:data:`JUDGE`), rebuilds
  those values and executes the assert statements with the probes replaced by them.

So exiting early (``sys.exit(0)``, ``os._exit(0)``, a signal), forcing the exit status
(``atexit``, ``sys.excepthook``), patching builtins or hooks, objects whose ``__eq__`` is always
true, and reading the test (expected values never enter the program's view) all leave the
test failed: the program can only supply values, which must equal what the test expects.
Stdin/stdout tests are compared by the verifier itself; the program sees only its own input.
"""

from __future__ import annotations

import ast
import builtins
import json
import sys
from dataclasses import dataclass

_BUILTINS = frozenset(dir(builtins))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
PROBE = "__rewardsmith_probe_{}"


@dataclass(frozen=True)
class AssertTest:
    """One assert-style test: what the program runs (``imports``, ``probes``) and what the judge runs."""

    imports: tuple[str, ...]
    probes: tuple[str, ...]
    asserts: tuple[str, ...]  # with the probes replaced by PROBE.format(i)


def split_asserts(source: str) -> AssertTest:
    """Split an assert-style test into probes and judged asserts; ValueError when unsupported."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"assert test does not parse: {exc}") from None
    imports, asserts, probes = [], [], []
    test_names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(stmt))
            test_names |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        elif isinstance(stmt, ast.Assert):
            asserts.append(stmt)
        else:
            raise ValueError(
                f"assert tests hold only import and assert statements, not {type(stmt).__name__}: {source[:80]!r}"
            )
    if not asserts:
        raise ValueError(f"no assert statement in test {source[:80]!r}")
    lifter = _Lifter(test_names, probes)
    judged = tuple(ast.unparse(ast.fix_missing_locations(lifter.visit(a))) for a in asserts)
    return AssertTest(tuple(imports), tuple(probes), judged)


class _Lifter(ast.NodeTransformer):
    """Replaces each outermost expression rooted in a program name by a probe placeholder."""

    def __init__(self, test_names: set[str], probes: list[str]):
        self.test_names, self.probes = test_names, probes
        self.local: set[str] = set()

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        self.local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        self.local |= {
            a.arg
            for n in ast.walk(node)
            if isinstance(n, ast.Lambda)
            for a in ast.walk(n.args)
            if isinstance(a, ast.arg)
        }
        return self.generic_visit(node)

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in _STDLIB:
            return node  # ``math.isclose``: the module, even if the program defines a ``math``
        if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Name)) and self._program_rooted(node):
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if used & self.local:
                raise ValueError(
                    f"{ast.unparse(node)!r} uses a name bound inside the assert; write one assert per value"
                )
            self.probes.append(ast.unparse(node))
            return ast.copy_location(ast.Name(PROBE.format(len(self.probes) - 1), ast.Load()), node)
        return super().visit(node)

    def _program_rooted(self, node: ast.expr) -> bool:
        while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
            inner = node.func if isinstance(node, ast.Call) else node.value
            if isinstance(node, ast.Attribute) and isinstance(inner, ast.Name) and inner.id in _STDLIB:
                return False
            node = inner
        if not isinstance(node, ast.Name) or not isinstance(node.ctx, ast.Load):
            return False
        return node.id not in _BUILTINS and node.id not in self.test_names and node.id not in self.local


def parse_values(stdout: bytes, count: int) -> list | None:
    """The runner's result line (one JSON list of ``count`` tagged values), or None when malformed."""
    try:
        lines = stdout.decode("utf-8").splitlines()
        values = json.loads(lines[0]) if len(lines) == 1 else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(values, list) or len(values) != count:
        return None
    return values


# Runs as ``python -I runner.py`` in the sandbox, beside ``main.py`` (the program) and
# ``config.json`` (limits and, for an assert test, its imports and probes; never expected
# values). It forks; the child applies the limits, drops privileges when root and asked to,
# runs the program, then evaluates the probes; the parent exits with the child's status
# (128 + signal when it was killed; 125, "sandbox failed", only when the child failed before
# the program started), so the program never sees the verifier as its parent.
RUNNER = r"""
import json, os, resource, signal, sys, types

def fail(msg):
    os.write(2, ("rewardsmith-sandbox: " + msg + "\n").encode())
    os._exit(125)

try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(libc, "prctl", None)
except Exception:
    libc = prctl = None

def die_with(parent):
    if prctl is not None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:
        os._exit(137)

def limit(res, value):
    hard = resource.getrlimit(res)[1]
    value = value if hard == resource.RLIM_INFINITY or os.geteuid() == 0 else min(value, hard)
    resource.setrlimit(res, (value, value))

def drop_to(uid):
    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Caps(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    if prctl is None or prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
        fail("cannot keep capabilities across setuid (needs Linux prctl)")
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    caps = (Caps * 2)()
    caps[0].effective = caps[0].permitted = 1 << 2  # CAP_DAC_READ_SEARCH only: reach the stdlib under /root
    if libc.capset(ctypes.byref(Hdr(0x20080522, 0)), caps) != 0:
        fail("capset failed (errno %d)" % ctypes.get_errno())

def plain(v, depth=0):
    t = type(v)
    if depth > 100:
        raise ValueError("value nested too deep")
    if v is None:
        return ["n"]
    if t is bool:
        return ["b", v]
    if t is int:
        return ["i", hex(v)]
    if t is float:
        return ["f", v.hex()]
    if t is complex:
        return ["c", v.real.hex(), v.imag.hex()]
    if t is str:
        return ["s", v]
    if t is bytes:
        return ["y", v.hex()]
    if t in (list, tuple, set, frozenset):
        return [{list: "l", tuple: "t", set: "S", frozenset: "F"}[t], [plain(x, depth + 1) for x in v]]
    if t is dict:
        return ["d", [[plain(k, depth + 1), plain(x, depth + 1)] for k, x in v.items()]]
    raise TypeError("unsupported result type " + t.__module__ + "." + t.__qualname__)

try:
    parent = os.getppid()
    die_with(parent)
    with open("config.json", encoding="utf-8") as f:
        cfg = json.load(f)
    with open("main.py", encoding="utf-8") as f:
        source = f.read()
    me = os.getpid()
    ready_r, ready_w = os.pipe()
    child = os.fork()
except Exception as exc:
    fail("runner failed: %r" % exc)
if child == 0:
    try:
        os.close(ready_r)
        for name, value in cfg["limits"].items():
            limit(getattr(resource, name), value)
        if os.geteuid() == 0 and cfg["drop_to"] is not None:
            drop_to(cfg["drop_to"])
        if cfg["nproc"] is not None:
            limit(resource.RLIMIT_NPROC, cfg["nproc"])
        die_with(me)
        if cfg["probes"] is not None:
            channel = os.dup(1)
            os.dup2(2, 1)
        os.write(ready_w, b"1")  # from here on, an exit status of 125 is the program's own
        os.close(ready_w)
    except Exception as exc:
        fail("setup failed: %r" % exc)
    main = types.ModuleType("__main__")
    sys.modules["__main__"], sys.argv = main, ["main.py"]
    exec(compile(source, "main.py", "exec"), main.__dict__)
    if cfg["probes"] is None:
        sys.exit(0)
    for line in cfg["imports"]:
        exec(line, main.__dict__)
    values = []
    for probe in cfg["probes"]:
        try:
            values.append(["v", plain(eval(probe, main.__dict__))])
        except BaseException as exc:
            values.append(["e", (type(exc).__name__ + ": " + str(exc))[:200]])
    data = (json.dumps(values) + "\n").encode()
    while data:
        data = data[os.write(channel, data):]
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))  # stop even a program that left the group
os.close(ready_w)
_, status = os.waitpid(child, 0)
code = os.waitstatus_to_exitcode(status)
if code == 125 and os.read(ready_r, 1):
    code = 1  # a program cannot pass itself off as a sandbox failure
os._exit(code if code >= 0 else 128 - code)
"""

# Runs as ``python -I runner.py`` in a sandbox of its own, where no program ever ran; stdin is
# ``{"tests": [{"imports", "asserts", "values"}]}``; prints one JSON list of [passed, reason].
JUDGE = r"""
import json, sys

def build(v):
    tag = v[0]
    if tag == "n":
        return None
    if tag in ("b", "s"):
        if type(v[1]) is not (bool if tag == "b" else str):
            raise ValueError("bad value")
        return v[1]
    if tag == "i":
        return int(v[1], 16)
    if tag == "f":
        return float.fromhex(v[1])
    if tag == "c":
        return complex(float.fromhex(v[1]), float.fromhex(v[2]))
    if tag == "y":
        return bytes.fromhex(v[1])
    if tag in ("l", "t", "S", "F"):
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](build(x) for x in v[1])
    if tag == "d":
        return {build(k): build(x) for k, x in v[1]}
    raise ValueError("bad value tag")

def judge(test):
    scope = {}
    for line in test["imports"]:
        exec(line, scope)
    for i, (kind, value) in enumerate(test["values"]):
        if kind != "v":
            return [False, "error in the solution: " + str(value)]
        try:
            scope["__rewardsmith_probe_%d" % i] = build(value)
        except Exception:
            return [False, "unreadable value from the solution"]
    for i, stmt in enumerate(test["asserts"]):
        names = compile(stmt, "<test>", "exec").co_names
        for name in names:
            if name in sys.stdlib_module_names and name not in scope:
                scope[name] = __import__(name)
        try:
            exec(stmt, scope)
        except AssertionError:
            return [False, "assertion %d failed" % i]
        except Exception as exc:
            return [False, "assertion %d raised %s" % (i, type(exc).__name__)]
    return [True, ""]

tests = json.load(sys.stdin)["tests"]
print(json.dumps([judge(t) for t in tests]))
"""
