"""Rollout records: validation, reading (JSONL, Parquet, ``datasets``) and writing.

The record schema is a contract (docs/architecture.md): ``prompt_id`` and ``completion`` are required;
``prompt``, ``num_tokens``, ``answer``, ``truncated``, ``data_source``, ``step`` and ``meta``
are optional, and any other field is carried through untouched. A *trajectory* (multi-turn,
docs/multiturn.md) carries ``messages`` instead: a list of ``system|user|assistant|tool`` messages
with ``content``, the assistant's ``tool_calls``, the tools' results and optional per-message
``num_tokens`` and ``logprobs``; its ``completion`` and ``prompt`` are then optional and derived (the
last assistant turn, the last user turn) — by the batch, never written into the record. A malformed record is an error
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
from .types import MAX_STEP

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
    trajectory = obj.get("messages") is not None
    for required in ("prompt_id",) if trajectory else ("prompt_id", "completion"):
        if required not in obj or obj[required] is None:
            raise RecordError(f"missing required field {required!r}")
    if not isinstance(obj["prompt_id"], (str, int)) or isinstance(obj["prompt_id"], bool):
        raise RecordError(f"'prompt_id' must be a string or integer, got {type(obj['prompt_id']).__name__}")
    if trajectory:
        validate_messages(obj["messages"])
    if obj.get("completion") is not None:
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


ROLES = ("system", "user", "assistant", "tool")


def validate_messages(messages: Any) -> None:
    """Check a trajectory's ``messages`` (module docstring); the error names the field
    (``messages[3].role``). A tool result must answer an earlier assistant tool call (by
    ``tool_call_id`` when the call has an ``id``); there is at least one assistant turn."""
    if not isinstance(messages, list):
        raise RecordError(f"'messages' must be a list of messages, got {type(messages).__name__}")
    pending: list[str | None] = []  # ids (None: no id) of the calls not answered yet
    for k, msg in enumerate(messages):
        where = f"messages[{k}]"
        if not isinstance(msg, dict):
            raise RecordError(f"{where} must be an object with 'role' and 'content', got {type(msg).__name__}")
        role = msg.get("role")
        if role not in ROLES:
            raise RecordError(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}"[:200])
        if msg.get("content") is not None and not isinstance(msg["content"], str):
            raise RecordError(f"{where}.content must be a string or null, got {type(msg['content']).__name__}")
        calls = msg.get("tool_calls")
        if calls is not None:
            if role != "assistant":
                raise RecordError(f"{where}.tool_calls: only an assistant message makes tool calls (role {role!r})")
            if not isinstance(calls, list):
                raise RecordError(f"{where}.tool_calls must be a list of calls, got {type(calls).__name__}")
            for j, call in enumerate(calls):
                pending.append(_call_id(call, f"{where}.tool_calls[{j}]"))
        if role == "tool":
            _answer_call(pending, msg.get("tool_call_id"), where)
        nt = msg.get("num_tokens")
        if nt is not None and not _is_count(nt, MAX_NUM_TOKENS):
            raise RecordError(f"{where}.num_tokens must be an integer in [0, {MAX_NUM_TOKENS}], got {nt!r}"[:200])
        lps = msg.get("logprobs")
        if lps is not None:
            ok = isinstance(lps, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x <= 1e-6 for x in lps
            )
            if not ok:
                raise RecordError(f"{where}.logprobs must be a list of finite log-probabilities (<= 0)")
            if nt is not None and len(lps) != nt:
                raise RecordError(f"{where}: {len(lps)} logprobs for num_tokens {nt}")
    if not any(m["role"] == "assistant" for m in messages):
        raise RecordError("'messages' has no assistant turn (a trajectory needs at least one)")


def _call_id(call: Any, where: str) -> str | None:
    """The id of one tool call (None when it has none); its name must be a string."""
    if not isinstance(call, dict):
        raise RecordError(f"{where} must be an object, got {type(call).__name__}")
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    if not isinstance(fn.get("name"), str):
        raise RecordError(f"{where} needs a string 'name' (or 'function.name')")
    args = fn.get("arguments", fn.get("parameters"))
    if args is not None and not isinstance(args, (str, dict)):
        raise RecordError(f"{where}.arguments must be an object or JSON text, got {type(args).__name__}")
    cid = call.get("id")
    return None if cid is None else str(cid)


def _answer_call(pending: list[str | None], call_id: Any, where: str) -> None:
    """Mark the call a tool result answers as answered; RecordError when there is none to answer."""
    if not pending:
        raise RecordError(f"{where}: a tool result with no earlier tool call to answer")
    if call_id is None:
        pending.pop(0)
    elif str(call_id) in pending:
        pending.remove(str(call_id))
    else:
        raise RecordError(f"{where}.tool_call_id {str(call_id)[:80]!r} answers no earlier unanswered tool call")


def message_text(msg: dict[str, Any]) -> str:
    """A message's content as text ("" for none)."""
    content = msg.get("content")
    return "" if content is None else str(content)


def derived_fields(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """``(prompt, completion)`` of a trajectory: the last user turn and the last assistant turn."""
    user = [message_text(m) for m in messages if m.get("role") == "user"]
    assistant = [message_text(m) for m in messages if m.get("role") == "assistant"]
    return (user[-1] if user else ""), (assistant[-1] if assistant else "")


def _drop_arrow_nulls(messages: Any) -> Any:
    """Messages read from Parquet or ``datasets``: Arrow stores every message (and tool call) with every
    key any of them has, null where absent; drop those nulls so the messages read back as written.
    (An explicit ``null`` and an absent key are therefore the same in these formats.)"""
    if not isinstance(messages, list):
        return messages
    return [_strip_nulls(m, depth=0) for m in messages]


def _strip_nulls(value: Any, depth: int) -> Any:
    if isinstance(value, dict) and depth < 4:  # message -> tool_calls[] -> call -> function -> arguments
        return {k: _strip_nulls(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, list) and depth < 4:
        return [_strip_nulls(v, depth) for v in value]
    return value


def _from_arrow(row: dict[str, Any]) -> dict[str, Any]:
    """A row read from Parquet/``datasets``: a trajectory's messages without Arrow's filled-in nulls."""
    if row.get("messages") is not None:
        row["messages"] = _drop_arrow_nulls(row["messages"])
    return row


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
                accept(_from_arrow(row), f"{path}:row {i}")
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
        source = [_from_arrow(row) for row in source.to_list()]
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
            _arrow_table(records)
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
        try:
            json_value(rec)  # the whole record at once; a column is named only when one fails
            continue
        except TypeError:
            pass
        for column, value in rec.items():
            try:
                _json_line({column: value})
            except TypeError as exc:
                raise RecordError(
                    f"column {column!r} (record {i}) cannot be written to JSONL: {exc}; drop or convert it"
                ) from None


def _arrow_table(records: Sequence[dict[str, Any]]) -> Any:
    """An Arrow table with every column any record has (``Table.from_pylist`` takes the first record's
    columns only and drops the rest), each column's type inferred over all rows."""
    import pyarrow as pa

    columns = dict.fromkeys(k for rec in records for k in rec)
    return pa.table({c: pa.array([rec.get(c) for rec in records]) for c in columns})


def stage_records(records: Iterable[dict[str, Any]], dest: str | os.PathLike) -> tuple[Path, Path]:
    """Write records beside ``dest`` without replacing it: ``(temporary, dest)`` for :func:`commit_files`."""
    records = list(records)
    if Path(dest).suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = _arrow_table(records)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            check_serialisable(records, dest)  # names the column
            raise
        return stage_file(dest, lambda fh: pq.write_table(table, fh)), Path(dest)
    return stage_file(dest, lambda fh: fh.writelines(_json_line(rec) for rec in records)), Path(dest)


def write_records(records: Iterable[dict[str, Any]], dest: str | os.PathLike) -> Path:
    """Write records to JSONL (default) or Parquet (``.parquet``), atomically (write-then-rename)."""
    commit_files([stage_records(records, dest)])
    return Path(dest)
