"""The package's import graph has no cycle, counting imports inside functions too (issue: layers).

The layer contracts themselves are checked by import-linter (``make lint``, pyproject.toml); this
test walks every module's imports with ``ast`` so a cycle hidden in a lazy import fails ``make test``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rewardsmith"


def module_files(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package under ``root``."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its body (functions included).

    ``from X import y`` counts ``X.y`` when that is a module, else ``X``; a name resolves to its
    longest prefix that is a module of the package (``import a.b.c`` of a class path counts ``a.b``).
    """
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = base[: len(base) - node.level + 1] if node.level else []
            source = ".".join(prefix + ([node.module] if node.module else []))
            subs = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
            candidates = subs if len(subs) == len(node.names) else [source, *subs]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def test_find_cycle_finds_a_lazy_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("def f():\n    from .sub.b import g\n")
    (pkg / "sub" / "b.py").write_text("from ..a import f\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub"] == {"pkg.sub.b"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (pkg / "sub" / "b.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph(PACKAGE)
    assert "rewardsmith.types" in graph and graph["rewardsmith.registry"] <= {"rewardsmith.types"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["rewardsmith.types", "rewardsmith.registry"])
def test_bottom_layers_import_no_component(module):
    graph = import_graph(PACKAGE)
    assert not {
        m for m in graph[module] if m.split(".")[1] in ("verifiers", "shaping", "advantages", "pipeline", "components")
    }
