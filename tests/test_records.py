import json

import pytest

from rewardsmith import RecordError, read_records, write_records
from rewardsmith.records import completion_text


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_keeps_unknown_fields_and_order(tmp_path):
    recs = [{"prompt_id": "q2", "completion": "a", "extra": {"x": [1, 2]}}, {"prompt_id": 7, "completion": "b", "foo": None}]
    path = _write(tmp_path / "r.jsonl", [json.dumps(r) for r in recs])
    assert read_records(path).records == recs
    out = write_records(recs, tmp_path / "out.jsonl")
    assert read_records(out).records == recs


def test_parquet_round_trip_keeps_unknown_fields(tmp_path):
    recs = [{"prompt_id": "q1", "completion": "x", "answer": "1", "custom": 3.5}, {"prompt_id": "q1", "completion": "y", "answer": "2", "custom": 1.0}]
    out = write_records(recs, tmp_path / "r.parquet")
    assert read_records(out).records == recs


def test_malformed_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "bad.jsonl", ['{"prompt_id": "a", "completion": "x"}', "{not json", '{"prompt_id": "b", "completion": "y"}'])
    with pytest.raises(RecordError, match=r"bad\.jsonl:2: invalid JSON"):
        read_records(path)


def test_skip_invalid_counts_and_keeps_the_rest(tmp_path):
    path = _write(tmp_path / "bad.jsonl", [
        '{"prompt_id": "a", "completion": "x"}',
        "{not json",
        '{"completion": "no id"}',
        '{"prompt_id": "b", "completion": "y", "num_tokens": -3}',
        "",
        '{"prompt_id": "c", "completion": "z"}',
    ])
    report = read_records(path, skip_invalid=True)
    assert [r["prompt_id"] for r in report.records] == ["a", "c"]
    assert report.n_skipped == 3
    assert "bad.jsonl:3: missing required field 'prompt_id'" in report.skipped[1]
    assert "num_tokens" in report.skipped[2]


@pytest.mark.parametrize("record, message", [
    ({"prompt_id": "a"}, "missing required field 'completion'"),
    ({"prompt_id": True, "completion": "x"}, "'prompt_id' must be"),
    ({"prompt_id": "a", "completion": 3}, "'completion' must be a string"),
    ({"prompt_id": "a", "completion": "x", "num_tokens": 1.5}, "'num_tokens' must be a non-negative integer"),
    ({"prompt_id": "a", "completion": "x", "truncated": "yes"}, "'truncated' must be true or false"),
    ({"prompt_id": "a", "completion": "x", "step": -1}, "'step' must be"),
    ({"prompt_id": "a", "completion": "x", "meta": [1]}, "'meta' must be an object"),
    ([1, 2], "must be a JSON object"),
])
def test_schema_errors(record, message):
    with pytest.raises(RecordError, match=message):
        read_records([record])


def test_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt_id": "a", "completion": "caf\xe9"}\n')
    with pytest.raises(RecordError, match="not UTF-8"):
        read_records(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="rollout file not found"):
        read_records("/nonexistent/rollouts.jsonl")


def test_datasets_input():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"prompt_id": "q", "completion": "c", "answer": "1"}])
    assert read_records(ds).records == [{"prompt_id": "q", "completion": "c", "answer": "1"}]


def test_conversational_completion():
    assert completion_text([{"role": "assistant", "content": "hi "}, {"role": "assistant", "content": "there"}]) == "hi there"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
