"""Rollout records: validation, reading (JSONL, Parquet, ``datasets``) and writing.

The record schema is a contract (docs/architecture.md): ``prompt_id`` and ``completion`` are required;
``prompt``, ``num_tokens``, ``answer``, ``truncated``, ``data_source``, ``step`` and ``meta``
are optional, and any other field is carried through untouched. A malformed record is an error
naming the file and line; with ``skip_invalid`` it is skipped and counted, never lost silently.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .atomic import atomic_write


class RecordError(ValueError):
    """A rollout record does not follow the schema; the message names where it came from."""


@dataclass
class ReadReport:
    """What reading a rollout source did: the records kept and every one skipped, with why."""

    records: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


def completion_text(value: Any) -> str:
    """A completion as text: a string, or a conversational list of messages (assistant content)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "content" in value:
        return str(value["content"])
    turns = assistant_turns(value)
    if turns is not None:
        return "".join(turns)
    raise RecordError(f"'completion' must be a string or a list of messages, got {type(value).__name__}")


def assistant_turns(value: Any) -> list[str] | None:
    """The assistant messages of a conversational completion, in order; None for plain text."""
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        return [str(m["content"]) for m in value if m.get("role", "assistant") == "assistant"]
    return None


def prompt_text(value: Any) -> str:
    """A prompt as text: a string, the contents of a list of messages joined, "" for none."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
    return str(value)


def validate_record(obj: Any) -> dict[str, Any]:
    """Check one record against the schema and return it (unchanged fields, normalised types)."""
    if not isinstance(obj, dict):
        raise RecordError(f"a record must be a JSON object, got {type(obj).__name__}")
    for required in ("prompt_id", "completion"):
        if required not in obj or obj[required] is None:
            raise RecordError(f"missing required field {required!r}")
    if not isinstance(obj["prompt_id"], (str, int)) or isinstance(obj["prompt_id"], bool):
        raise RecordError(f"'prompt_id' must be a string or integer, got {type(obj['prompt_id']).__name__}")
    completion_text(obj["completion"])
    if "prompt" in obj and obj["prompt"] is not None and not isinstance(obj["prompt"], (str, list)):
        raise RecordError(f"'prompt' must be a string or a list of messages, got {type(obj['prompt']).__name__}")
    nt = obj.get("num_tokens")
    if nt is not None:
        if isinstance(nt, bool) or not isinstance(nt, (int, float)) or nt < 0 or (isinstance(nt, float) and (math.isnan(nt) or nt != int(nt))):
            raise RecordError(f"'num_tokens' must be a non-negative integer, got {nt!r}")
    if obj.get("truncated") is not None and not isinstance(obj["truncated"], bool):
        raise RecordError(f"'truncated' must be true or false, got {obj['truncated']!r}")
    step = obj.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise RecordError(f"'step' must be a non-negative integer, got {step!r}")
    if obj.get("data_source") is not None and not isinstance(obj["data_source"], str):
        raise RecordError(f"'data_source' must be a string, got {type(obj['data_source']).__name__}")
    if obj.get("meta") is not None and not isinstance(obj["meta"], dict):
        raise RecordError(f"'meta' must be an object, got {type(obj['meta']).__name__}")
    return obj


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """``("file:line", value)`` for each non-blank line of a JSONL file, streamed. A line that is
    not valid JSON gives a :class:`RecordError` as its value (the caller raises or skips it); a
    missing file is :class:`FileNotFoundError`, a file that is not UTF-8 a :class:`RecordError`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with path.open("r", encoding="utf-8", errors="strict") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    value = RecordError(f"invalid JSON ({exc.msg} at column {exc.colno})")
                yield f"{path}:{lineno}", value
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_records(source: Any, skip_invalid: bool = False) -> ReadReport:
    """Read rollout records from a JSONL/Parquet path, a ``datasets.Dataset`` or an iterable of dicts.

    Raises :class:`RecordError` naming the file and line of the first malformed record, unless
    ``skip_invalid`` is set: then malformed records are skipped and listed in the report.
    """
    report = ReadReport(records=[])

    def accept(obj: Any, where: str) -> None:
        try:
            report.records.append(validate_record(obj))
        except RecordError as exc:
            if not skip_invalid:
                raise RecordError(f"{where}: {exc}") from None
            report.skipped.append(f"{where}: {exc}")

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"rollout file not found: {path}")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
                accept(row, f"{path}:row {i}")
            return report
        for where, obj in iter_jsonl(path):
            if isinstance(obj, RecordError):
                if not skip_invalid:
                    raise RecordError(f"{where}: {obj}")
                report.skipped.append(f"{where}: {obj}")
                continue
            accept(obj, where)
        return report
    if hasattr(source, "to_list") and hasattr(source, "column_names"):  # datasets.Dataset
        source = source.to_list()
    for i, obj in enumerate(source):
        accept(obj, f"record {i}")
    return report


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_records(records: Iterable[dict[str, Any]], dest: str | os.PathLike) -> Path:
    """Write records to JSONL (default) or Parquet (``.parquet``), atomically (write-then-rename)."""
    path = Path(dest)
    records = list(records)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_write(path, binary=True) as fh:
            pq.write_table(pa.Table.from_pylist(records), fh)
        return path
    with atomic_write(path) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, default=_jsonable) + "\n")
    return path
