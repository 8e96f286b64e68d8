"""Rollout records: validation, reading (JSONL, Parquet, ``datasets``) and writing.

The record schema is a contract (docs/architecture.md): ``prompt_id`` and ``completion`` are required;
``prompt``, ``num_tokens``, ``answer``, ``truncated``, ``data_source``, ``step`` and ``meta``
are optional, and any other field is carried through untouched. A malformed record is an error
naming the file and line; with ``skip_invalid`` it is skipped and counted, never lost silently.
A line that is not UTF-8, a non-finite number (``NaN``, ``Infinity``, ``1e999``) and an
out-of-range count are malformed records like any other.

Writing is all-or-nothing: :func:`check_serialisable` refuses, before any work, a record holding
a value that has no JSON form (naming the column); values that have one are written as: datetime,
date, time → ISO 8601 text; timedelta → seconds; Decimal → its exact decimal text; bytes →
base64 text; numpy scalars/arrays → numbers/lists; NaN/±inf → null; sets/tuples → lists. A string
holding a lone surrogate (``"\\ud800"`` in the input) is written back escaped, as it came.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import commit_files, stage_file
from .state import MAX_STEP

MAX_NUM_TOKENS = 10**12  # a larger token count is a corrupt value, not a completion


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
    if nt is not None and not _is_count(nt, MAX_NUM_TOKENS):
        raise RecordError(f"'num_tokens' must be an integer in [0, {MAX_NUM_TOKENS}], got {nt!r}"[:200])
    if obj.get("truncated") is not None and not isinstance(obj["truncated"], bool):
        raise RecordError(f"'truncated' must be true or false, got {obj['truncated']!r}")
    step = obj.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP):
        raise RecordError(f"'step' must be an integer in [0, {MAX_STEP}], got {step!r}"[:200])
    if obj.get("data_source") is not None and not isinstance(obj["data_source"], str):
        raise RecordError(f"'data_source' must be a string, got {type(obj['data_source']).__name__}")
    if obj.get("meta") is not None and not isinstance(obj["meta"], dict):
        raise RecordError(f"'meta' must be an object, got {type(obj['meta']).__name__}")
    return obj


def _is_count(value: Any, hi: int) -> bool:
    """An integral number in [0, hi] (an int, or a float with no fraction; never a bool, NaN or inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (isinstance(value, int) or math.isfinite(value)) and 0 <= value <= hi and value == int(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} overflows a float")
    return value


def parse_line(line: str) -> Any:
    """One JSON value (strict: no NaN/Infinity, no number overflowing a float); RecordError otherwise."""
    try:
        return json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # our refusals, ints over 4300 digits, absurd nesting
        raise RecordError(f"invalid JSON ({str(exc)[:200]})") from None


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """``("file:line", value)`` for each non-blank line of a JSONL file, streamed. A line that is
    not strict JSON (:func:`parse_line`) or not UTF-8 gives a :class:`RecordError` as its value
    (the caller raises or skips it; the other lines are still read); a missing file is
    :class:`FileNotFoundError`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield f"{path}:{lineno}", RecordError(f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)")
                continue
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", parse_line(line)
            except RecordError as exc:
                yield f"{path}:{lineno}", exc


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


def json_value(value: Any) -> Any:
    """``value`` in plain JSON types (see the module docstring); TypeError for a type with no JSON form."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return json_value(value.tolist())
    raise TypeError(f"a {type(value).__module__}.{type(value).__qualname__} has no JSON form")


def _json_line(record: dict[str, Any]) -> bytes:
    value = json_value(record)
    try:
        return (json.dumps(value, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped (valid JSON, read back as it came)
        return (json.dumps(value, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def check_serialisable(records: Sequence[dict[str, Any]], dest: str | os.PathLike) -> None:
    """Raise :class:`RecordError` naming the column (and the first record) that ``dest``'s format
    (JSONL, or Parquet for ``.parquet``) cannot hold, before any work is done."""
    if Path(dest).suffix == ".parquet":
        import pyarrow as pa

        try:
            pa.Table.from_pylist(list(records))
            return
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        for column in dict.fromkeys(k for rec in records for k in rec):
            try:
                pa.array([rec.get(column) for rec in records])
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise RecordError(
                    f"column {column!r} cannot be written to Parquet ({str(exc)[:200]}); write JSONL or convert it"
                ) from None
        raise RecordError("the records cannot be written to Parquet together (columns of mixed types); write JSONL")
    for i, rec in enumerate(records):
        for column, value in rec.items():
            try:
                _json_line({column: value})
            except TypeError as exc:
                raise RecordError(
                    f"column {column!r} (record {i}) cannot be written to JSONL: {exc}; drop or convert it"
                ) from None


def stage_records(records: Iterable[dict[str, Any]], dest: str | os.PathLike) -> tuple[Path, Path]:
    """Write records beside ``dest`` without replacing it: ``(temporary, dest)`` for :func:`commit_files`."""
    records = list(records)
    if Path(dest).suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records)
        return stage_file(dest, lambda fh: pq.write_table(table, fh)), Path(dest)
    return stage_file(dest, lambda fh: fh.writelines(_json_line(rec) for rec in records)), Path(dest)


def write_records(records: Iterable[dict[str, Any]], dest: str | os.PathLike) -> Path:
    """Write records to JSONL (default) or Parquet (``.parquet``), atomically (write-then-rename)."""
    commit_files([stage_records(records, dest)])
    return Path(dest)
