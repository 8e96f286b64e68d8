"""Analysis files: reading JSONL inputs, writing JSON without NaN, output folders, terminal tables."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..records import RecordError, iter_jsonl


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file (blank lines skipped); errors name the file and line."""
    return [obj for _, obj in located_jsonl(path)]


def located_jsonl(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(``"file:line"``, object) for each non-blank line of a JSONL file."""
    rows = []
    for where, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise RecordError(f"{where}: {obj}")
        if not isinstance(obj, dict):
            raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        rows.append((where, obj))
    return rows


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return finite_or_none(value.item())
    return value


def write_json(obj: Any, path: Path) -> Path:
    """``obj`` as indented JSON (NaN/inf written as null), written atomically."""
    with atomic_write(path) as fh:
        fh.write(json.dumps(finite_or_none(obj), indent=2, allow_nan=False) + "\n")
    return path


def output_dir(out: str | None, command: str, stem: str) -> Path:
    """``out`` if given, else ``runs/<command>/<stem>-<timestamp>`` under the working directory."""
    path = Path(out) if out else Path("runs") / command / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fmt(value: Any, spec: str = ".3f") -> str:
    """A table cell: numbers formatted, None as 'n/a'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], spec: str = ".3f") -> str:
    """Left-aligned first column, right-aligned numbers, one line per row."""
    cells = [[str(h) for h in header]] + [[fmt(v, spec) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
