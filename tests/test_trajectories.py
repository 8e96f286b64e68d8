"""Trajectory records (``messages``): validation, derived fields, round trips in every format, the
batch's turn columns and assistant-only lengths."""

import json
import warnings

import numpy as np
import pytest

from rewardsmith import RecordError, read_records, write_records
from rewardsmith.batch import Batch
from rewardsmith.records import ROLES

CALL = {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"expr": "2+3"}'}}
TRAJ = {
    "prompt_id": "q1",
    "answer": "5",
    "messages": [
        {"role": "system", "content": "You can call calc."},
        {"role": "user", "content": "What is 2+3?"},
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [CALL],
            "num_tokens": 4,
            "logprobs": [-0.1, -0.2, -0.3, -0.4],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "calc", "content": "5"},
        {"role": "assistant", "content": "Answer: 5", "num_tokens": 3},
    ],
}
SINGLE = {"prompt_id": "q1", "prompt": "What is 2+3?", "completion": "Answer: 5", "answer": "5", "num_tokens": 3}


def _traj(**changes):
    return {**TRAJ, **changes}


def test_jsonl_round_trip_keeps_every_field(tmp_path):
    recs = [TRAJ, SINGLE, _traj(prompt_id="q2", meta={"k": 1}, truncated=True)]
    out = write_records(recs, tmp_path / "t.jsonl")
    assert read_records(out).records == recs
    # the derived prompt/completion are never written into the records
    assert "completion" not in json.loads(out.read_text().splitlines()[0])


def test_parquet_round_trip_keeps_every_field(tmp_path):
    recs = [TRAJ, _traj(prompt_id="q2", messages=[*TRAJ["messages"][:2], {"role": "assistant", "content": "5"}])]
    out = write_records(recs, tmp_path / "t.parquet")
    assert read_records(out).records == recs


def test_parquet_and_datasets_keep_object_arguments_with_different_keys(tmp_path):
    """Arrow merges the calls' argument objects into one struct (every key, null where absent); reading
    drops those nulls, so each call's arguments come back as written."""
    calls = [
        {"id": "a", "function": {"name": "calc", "arguments": {"expr": "2+3"}}},
        {"id": "b", "function": {"name": "lookup", "arguments": {"key": "x", "limit": 3}}},
    ]
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a", "content": "5"},
        {"role": "tool", "tool_call_id": "b", "content": "y"},
        {"role": "assistant", "content": "5"},
    ]
    recs = [_traj(messages=msgs)]
    assert read_records(write_records(recs, tmp_path / "a.parquet")).records == recs
    datasets = pytest.importorskip("datasets")
    assert read_records(datasets.Dataset.from_list(recs)).records == recs


def test_parquet_refuses_arguments_of_mixed_types_by_column(tmp_path):
    msgs = [dict(m) for m in TRAJ["messages"]]
    msgs[2] = {**msgs[2], "tool_calls": [{"id": "c1", "function": {"name": "calc", "arguments": {"expr": "2+3"}}}]}
    with pytest.raises(RecordError, match="column 'messages' cannot be written to Parquet"):
        write_records([TRAJ, _traj(messages=msgs)], tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()


def test_parquet_mixed_single_turn_and_trajectories(tmp_path):
    out = write_records([SINGLE, TRAJ], tmp_path / "m.parquet")
    back = read_records(out).records
    # Parquet has one schema: each row gets every column, null where it had none (as before trajectories)
    assert {k: v for k, v in back[0].items() if v is not None} == SINGLE
    assert {k: v for k, v in back[1].items() if v is not None} == TRAJ
    b = Batch.from_records(back)
    assert b.completions == ["Answer: 5", "Answer: 5"] and b.is_trajectory.tolist() == [False, True]


def test_datasets_round_trip_keeps_every_field():
    datasets = pytest.importorskip("datasets")
    recs = [TRAJ, _traj(prompt_id="q2")]
    assert read_records(datasets.Dataset.from_list(recs)).records == recs


def test_single_turn_jsonl_is_byte_identical(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps(SINGLE, ensure_ascii=False) + "\n", encoding="utf-8")
    out = write_records(read_records(src).records, tmp_path / "o.jsonl")
    assert out.read_bytes() == src.read_bytes()


def test_derived_prompt_and_completion():
    b = Batch.from_records([TRAJ])
    assert b.prompts == ["What is 2+3?"] and b.completions == ["Answer: 5"]
    assert b.turns == [["Let me compute.", "Answer: 5"]]
    # given fields win over derived ones
    b = Batch.from_records([_traj(prompt="P", completion="C")])
    assert b.prompts == ["P"] and b.completions == ["C"]


def test_turn_columns():
    b = Batch.from_records([SINGLE, TRAJ, SINGLE])
    t = b.trajectories
    assert t.offsets.tolist() == [0, 0, 5, 5]
    assert [ROLES[r] for r in t.role] == ["system", "user", "assistant", "tool", "assistant"]
    assert t.position.tolist() == [0, 1, 2, 3, 4]
    assert t.turn.tolist() == [-1, -1, 0, -1, 1]
    assert t.n_tool_calls.tolist() == [0, 0, 1, 0, 0]
    assert t.tool_calls[2] == [{"name": "calc", "arguments": '{"expr": "2+3"}'}]
    assert t.assistant(1).tolist() == [2, 4] and t.assistant(0).tolist() == []
    assert np.isnan(t.num_tokens[[0, 1, 3]]).all() and t.num_tokens[[2, 4]].tolist() == [4, 3]


def test_lengths_count_assistant_turns_only():
    b = Batch.from_records([TRAJ])
    assert b.lengths("tokens") == (pytest.approx([7.0]), "tokens")  # 4 + 3, not the system/user/tool messages
    assert b.lengths("words")[0].tolist() == [5.0]  # "Let me compute." + "Answer: 5"
    assert b.lengths("chars")[0].tolist() == [len("Let me compute.") + len("Answer: 5")]
    # a turn without num_tokens counts its logprobs, else the tokenizer
    msgs = [dict(m) for m in TRAJ["messages"]]
    del msgs[2]["num_tokens"]
    del msgs[4]["num_tokens"]
    b = Batch.from_records([_traj(messages=msgs)])
    assert b.lengths("tokens", tokenizer=lambda s: s.split())[0].tolist() == [4 + 2]
    # a record-level num_tokens is the assistant count and wins
    assert Batch.from_records([_traj(num_tokens=9)]).lengths("tokens")[0].tolist() == [9.0]


def test_mixing_trajectories_with_unknown_token_counts_is_an_error():
    msgs = [dict(m) for m in TRAJ["messages"]]
    del msgs[4]["num_tokens"]
    with pytest.raises(RecordError, match="1 of 2 records have no num_tokens"):
        Batch.from_records([TRAJ, _traj(messages=msgs)]).lengths("tokens")


@pytest.mark.parametrize(
    "messages, message",
    [
        ("hello", r"'messages' must be a list of messages, got str"),
        ([{"role": "robot", "content": "x"}], r"messages\[0\]\.role must be one of system, user, assistant, tool"),
        (["hi"], r"messages\[0\] must be an object"),
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "5"}, {"role": "assistant", "content": "a"}],
            r"messages\[1\]: a tool result with no earlier tool call",
        ),
        (
            [{"role": "assistant", "content": "a", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "zz"}],
            r"messages\[1\]\.tool_call_id 'zz' answers no earlier unanswered tool call",
        ),
        (
            [{"role": "user", "content": "q", "tool_calls": [CALL]}, {"role": "assistant", "content": "a"}],
            r"messages\[0\]\.tool_calls: only an assistant message",
        ),
        ([{"role": "assistant", "content": "a", "tool_calls": "calc()"}], r"messages\[0\]\.tool_calls must be a list"),
        (
            [{"role": "assistant", "content": "a", "tool_calls": [{"arguments": {}}]}],
            r"messages\[0\]\.tool_calls\[0\] needs a string 'name'",
        ),
        ([{"role": "assistant", "content": 3}], r"messages\[0\]\.content must be a string or null"),
        ([{"role": "assistant", "content": "a", "num_tokens": -1}], r"messages\[0\]\.num_tokens must be an integer"),
        ([{"role": "assistant", "content": "a", "logprobs": [0.5]}], r"messages\[0\]\.logprobs must be a list"),
        (
            [{"role": "assistant", "content": "a", "num_tokens": 2, "logprobs": [-1.0]}],
            r"messages\[0\]: 1 logprobs for num_tokens 2",
        ),
        ([{"role": "user", "content": "q"}], r"'messages' has no assistant turn"),
    ],
)
def test_malformed_messages_name_the_record_and_field(tmp_path, messages, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SINGLE) + "\n" + json.dumps(_traj(messages=messages)) + "\n")
    with pytest.raises(RecordError, match=r"bad\.jsonl:2: " + message):
        read_records(path)
    with pytest.raises(RecordError, match=r"record 0: " + message):
        Batch.from_records([_traj(messages=messages)])


def test_a_second_tool_result_needs_a_second_call():
    msgs = [*TRAJ["messages"][:4], {"role": "tool", "content": "5 again"}, {"role": "assistant", "content": "5"}]
    with pytest.raises(RecordError, match=r"messages\[4\]: a tool result with no earlier tool call"):
        read_records([_traj(messages=msgs)])


def test_trajectory_without_completion_is_valid_and_single_turn_still_needs_one():
    assert read_records([TRAJ]).records == [TRAJ]
    with pytest.raises(RecordError, match="missing required field 'completion'"):
        read_records([{"prompt_id": "q"}])


def test_token_budgets_falling_back_to_words_are_announced_once():
    """TRL's tool loop gives no per-turn token counts: a `tokens` spec without a tokenizer then counts
    words, which a token budget must not do silently (once per pipeline, and only for specs that shape)."""
    from rewardsmith import load_spec
    from rewardsmith.pipeline import RewardWarning

    msgs = [{"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "so so so Answer: 5"}]
    recs = [{"prompt_id": "q", "answer": "5", "messages": msgs}] * 2
    pipe = load_spec({"name": "budget", "verifier": "exact", "shaping": [{"name": "truncation", "max_len": 3}]})
    with pytest.warns(RewardWarning, match="lengths are counted in words") as caught:
        scores = pipe.score(recs)
        pipe.score(recs)
    assert len([w for w in caught if issubclass(w.category, RewardWarning)]) == 1
    assert scores.unit == "words" and scores.length.tolist() == [5.0, 5.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_spec({"verifier": "exact"}).score(recs)  # nothing shaped by length: nothing to announce
        load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "kimi"}]}).score(recs)
