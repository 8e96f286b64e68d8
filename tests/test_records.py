import json

import pytest

from rewardsmith import RecordError, read_records, write_records
from rewardsmith.records import completion_text


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_keeps_unknown_fields_and_order(tmp_path):
    recs = [
        {"prompt_id": "q2", "completion": "a", "extra": {"x": [1, 2]}},
        {"prompt_id": 7, "completion": "b", "foo": None},
    ]
    path = _write(tmp_path / "r.jsonl", [json.dumps(r) for r in recs])
    assert read_records(path).records == recs
    out = write_records(recs, tmp_path / "out.jsonl")
    assert read_records(out).records == recs


def test_parquet_round_trip_keeps_unknown_fields(tmp_path):
    recs = [
        {"prompt_id": "q1", "completion": "x", "answer": "1", "custom": 3.5},
        {"prompt_id": "q1", "completion": "y", "answer": "2", "custom": 1.0},
    ]
    out = write_records(recs, tmp_path / "r.parquet")
    assert read_records(out).records == recs


def test_malformed_line_names_file_and_line(tmp_path):
    path = _write(
        tmp_path / "bad.jsonl",
        ['{"prompt_id": "a", "completion": "x"}', "{not json", '{"prompt_id": "b", "completion": "y"}'],
    )
    with pytest.raises(RecordError, match=r"bad\.jsonl:2: invalid JSON"):
        read_records(path)


def test_skip_invalid_counts_and_keeps_the_rest(tmp_path):
    path = _write(
        tmp_path / "bad.jsonl",
        [
            '{"prompt_id": "a", "completion": "x"}',
            "{not json",
            '{"completion": "no id"}',
            '{"prompt_id": "b", "completion": "y", "num_tokens": -3}',
            "",
            '{"prompt_id": "c", "completion": "z"}',
        ],
    )
    report = read_records(path, skip_invalid=True)
    assert [r["prompt_id"] for r in report.records] == ["a", "c"]
    assert report.n_skipped == 3
    assert "bad.jsonl:3: missing required field 'prompt_id'" in report.skipped[1]
    assert "num_tokens" in report.skipped[2]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"prompt_id": "a"}, "missing required field 'completion'"),
        ({"prompt_id": True, "completion": "x"}, "'prompt_id' must be"),
        ({"prompt_id": "a", "completion": 3}, "'completion' must be a string"),
        ({"prompt_id": "a", "completion": "x", "num_tokens": 1.5}, "'num_tokens' must be an integer in"),
        ({"prompt_id": "a", "completion": "x", "truncated": "yes"}, "'truncated' must be true or false"),
        ({"prompt_id": "a", "completion": "x", "step": -1}, "'step' must be"),
        ({"prompt_id": "a", "completion": "x", "meta": [1]}, "'meta' must be an object"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_schema_errors(record, message):
    with pytest.raises(RecordError, match=message):
        read_records([record])


def test_not_utf8_line_is_reported_by_line_and_skippable(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(
        b'{"prompt_id": "a", "completion": "ok"}\n{"prompt_id": "b", "completion": "caf\xe9"}\n{"prompt_id": "c", "completion": "ok"}\n'
    )
    with pytest.raises(
        RecordError, match=r"latin.jsonl:2: not UTF-8 text \(invalid continuation byte at byte 37 of the line\)"
    ):
        read_records(path)
    report = read_records(path, skip_invalid=True)
    assert [r["prompt_id"] for r in report.records] == ["a", "c"] and report.skipped[0].startswith(
        f"{path}:2: not UTF-8"
    )


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '{"prompt_id": "a", "completion": "x", "num_tokens": Infinity}',
            r"invalid JSON \(non-finite number Infinity\)",
        ),
        ('{"prompt_id": "a", "completion": "x", "num_tokens": -Infinity}', r"non-finite number -Infinity"),
        ('{"prompt_id": "a", "completion": "x", "meta": {"score": NaN}}', r"non-finite number NaN"),
        ('{"prompt_id": "a", "completion": "x", "num_tokens": 1e999}', r"number 1e999 overflows a float"),
        (
            '{"prompt_id": "a", "completion": "x", "num_tokens": 100000000000000000000000}',
            r"'num_tokens' must be an integer in \[0, ",
        ),
        ('{"prompt_id": "a", "completion": "x", "step": 100000000000000000000}', r"'step' must be an integer in \[0, "),
        ('{"prompt_id": "a", "completion": "x", "step": 1' + "0" * 5000 + "}", r"invalid JSON \(Exceeds the limit"),
        ("[" * 100_000, r"invalid JSON"),
    ],
)
def test_overflowing_and_non_finite_numbers_are_record_errors(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text('{"prompt_id": "ok", "completion": "x"}\n' + line + "\n")
    with pytest.raises(RecordError, match=r"r.jsonl:2: .*" + message):
        read_records(path)
    assert read_records(path, skip_invalid=True).n_skipped == 1


def test_every_parquet_column_type_is_written_to_jsonl(tmp_path):
    import datetime
    import decimal

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    table = pa.table(
        {
            "prompt_id": ["q"],
            "completion": ["c"],
            "when": [when],
            "day": [datetime.date(2026, 1, 2)],
            "price": pa.array([decimal.Decimal("1.10")], pa.decimal128(5, 2)),
            "blob": [b"\x00\xff"],
            "took": pa.array([datetime.timedelta(seconds=1.5)]),
            "nested": [{"a": [1, 2], "b": {"c": 1.5}}],
            "missing": pa.array([float("nan")]),
        }
    )
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    records = read_records(src).records
    records[0]["np"] = np.float32(0.5)
    records[0]["arr"] = np.arange(3)
    write_records(records, tmp_path / "out.jsonl")
    out = json.loads((tmp_path / "out.jsonl").read_text())
    assert out == {
        "prompt_id": "q",
        "completion": "c",
        "when": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "price": "1.10",
        "blob": "AP8=",
        "took": 1.5,
        "nested": {"a": [1, 2], "b": {"c": 1.5}},
        "missing": None,
        "np": 0.5,
        "arr": [0, 1, 2],
    }
    write_records(records[:1], tmp_path / "out.parquet")  # Parquet keeps the native types
    assert pq.read_table(tmp_path / "out.parquet").column("price").to_pylist() == [decimal.Decimal("1.10")]


def test_unserialisable_column_is_refused_up_front_by_name(tmp_path):
    from rewardsmith.records import check_serialisable

    records = [{"prompt_id": "a", "completion": "x"}, {"prompt_id": "b", "completion": "y", "handle": object()}]
    with pytest.raises(
        RecordError,
        match=r"column 'handle' \(record 1\) cannot be written to JSONL: a builtins.object has no JSON form",
    ):
        check_serialisable(records, tmp_path / "o.jsonl")
    mixed = [{"prompt_id": "a", "completion": "x", "v": 1}, {"prompt_id": "b", "completion": "y", "v": "one"}]
    check_serialisable(mixed, tmp_path / "o.jsonl")
    with pytest.raises(RecordError, match=r"column 'v' cannot be written to Parquet"):
        check_serialisable(mixed, tmp_path / "o.parquet")
    assert not list(tmp_path.iterdir())  # nothing written


def test_lone_surrogate_round_trips(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"prompt_id": "a", "completion": "bad \\ud800 half"}\n')
    records = read_records(path).records
    assert records[0]["completion"] == "bad \ud800 half"
    write_records(records, tmp_path / "o.jsonl")
    assert read_records(tmp_path / "o.jsonl").records == records
    with pytest.raises(RecordError, match="column 'completion' cannot be written to Parquet"):
        from rewardsmith.records import check_serialisable

        check_serialisable(records, tmp_path / "o.parquet")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="rollout file not found"):
        read_records("/nonexistent/rollouts.jsonl")


def test_datasets_input():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"prompt_id": "q", "completion": "c", "answer": "1"}])
    assert read_records(ds).records == [{"prompt_id": "q", "completion": "c", "answer": "1"}]


def test_conversational_completion():
    assert (
        completion_text([{"role": "assistant", "content": "hi "}, {"role": "assistant", "content": "there"}])
        == "hi there"
    )
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
