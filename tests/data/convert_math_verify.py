"""Convert Math-Verify's regression cases into ``math_verify_cases.jsonl`` (run by hand, offline).

    python tests/data/convert_math_verify.py /path/to/Math-Verify-checkout

Reads ``tests/test_all.py`` and ``tests/test_numina_cases.py`` of a local Math-Verify checkout
(importing them collects each ``pytest.mark.parametrize`` table; nothing is downloaded), and
writes one record per case: ``gold``, ``prediction``, ``expected`` (0/1) and the options the
case's ``compare_strings`` call used (``match_types``, ``precision``,
``allow_set_relation_comp``). The first line is a header naming the source commit.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

FILES = ("test_all", "test_numina_cases")
_LATEX_ONLY = (
    "math-verify's LaTeX-only extraction config (match_types=['latex']): inline math split across lines "
    "is not LaTeX there; rewardsmith's no-marker fallback also reads plain expressions, so 9 is read"
)
EXCLUDED = {  # cases about math-verify's own API options, not about reading an answer
    "test_all.py::test_latex_notation[5]": _LATEX_ONLY,
    "test_all.py::test_latex_notation[6]": _LATEX_ONLY,
}
_SET_RELATION = (
    "needs math-verify's allow_set_relation_comp=True option (rewardsmith keeps math-verify's default, False)"
)
OUT = Path(__file__).with_name("math_verify_cases.jsonl")


def call_options(fn) -> dict:
    """The keyword arguments of the ``compare_strings(...)`` call in a test's body (names = per-case parameters)."""
    tree = ast.parse(inspect.getsource(fn).lstrip())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            return {
                kw.arg: (kw.value.id if isinstance(kw.value, ast.Name) else ast.literal_eval(kw.value))
                for kw in node.keywords
            }
    return {}


def main(checkout: str) -> None:
    root = Path(checkout).resolve()
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    sys.path.insert(0, str(root))
    rows, skipped = [], 0
    for name in FILES:
        module = importlib.import_module(f"tests.{name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            if not fname.startswith("test_") or not marks:
                continue
            argnames = [a.strip() for a in marks[0].args[0].split(",")]
            opts = call_options(fn)
            for i, values in enumerate(marks[0].args[1]):
                if len(values) != len(argnames):  # a malformed entry upstream (pytest errors on it)
                    skipped += 1
                    continue
                case = dict(zip(argnames, values))
                resolved = {k: case[v] if isinstance(v, str) and v in case else v for k, v in opts.items()}
                case_id = f"{name}.py::{fname}[{i}]"
                excluded = EXCLUDED.get(case_id) or (_SET_RELATION if resolved.get("allow_set_relation_comp") else None)
                rows.append(
                    {
                        "id": case_id,
                        "gold": case["gold"],
                        "prediction": case["pred"],
                        "expected": int(case["expected"]),
                        "match_types": resolved.get("match_types", ["latex", "expr"]),
                        "precision": resolved.get("precision", 6),
                        "allow_set_relation_comp": bool(resolved.get("allow_set_relation_comp", False)),
                        **({"excluded": excluded} if excluded else {}),
                    }
                )
    header = {
        "source": "https://github.com/huggingface/Math-Verify",
        "commit": commit,
        "files": [f"tests/{f}.py" for f in FILES],
        "cases": len(rows),
        "malformed_upstream_entries_skipped": skipped,
    }
    with OUT.open("w") as f:
        for row in [header, *rows]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} cases ({skipped} malformed skipped) from {commit} -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
