import json
import math

import numpy as np
import pytest

from rewardsmith import Batch, StateError, load_spec
from rewardsmith.verifiers.base import BAD_REFERENCE, ERROR, NO_ANSWER, OK


def rec(pid, completion, answer="4", **kw):
    return {"prompt_id": pid, "completion": completion, "answer": answer, **kw}


def test_base_values_for_correct_wrong_and_no_answer():
    pipe = load_spec(
        {"verifier": "exact", "base": {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0}, "length_unit": "words"}
    )
    s = pipe.score([rec("q", "Answer: 4"), rec("q", "Answer: 5"), rec("q", "hmm", answer="4")])
    # 'exact' falls back to the whole completion, so "hmm" is an answer; use a rule-only verifier for no_answer
    assert s.total.tolist() == [1.0, -0.5, -0.5]
    pipe = load_spec(
        {
            "verifier": {"name": "exact", "extract": ["answer_colon"]},
            "base": {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0},
            "length_unit": "words",
        }
    )
    s = pipe.score([rec("q", "Answer: 4"), rec("q", "Answer: 5"), rec("q", "hmm")])
    assert s.total.tolist() == [1.0, -0.5, -1.0]
    assert s.correct.tolist() == [1.0, 0.0, 0.0]
    assert s.status == [OK, OK, NO_ANSWER]


def test_unknown_correctness_is_nan_with_a_defined_reward():
    pipe = load_spec({"verifier": "exact", "base": {"wrong": -0.5}, "length_unit": "words"})
    s = pipe.score([rec("q", "Answer: 4", answer=None)])
    assert math.isnan(s.correct[0]) and s.total[0] == -0.5 and s.status == [BAD_REFERENCE]
    out = s.to_records([rec("q", "Answer: 4", answer=None)])
    assert out[0]["correct"] is None and out[0]["components"]["correctness"] == -0.5  # paid as wrong
    assert math.isnan(s.values["correctness"][0])


def test_partial_credit_scales_between_wrong_and_correct():
    pytest.importorskip("reasoning_gym")
    import reasoning_gym as rg

    entry = next(e for e in rg.create_dataset("word_ladder", size=20, seed=1))
    pipe = load_spec({"verifier": "reasoning_gym", "base": {"correct": 2.0, "wrong": -1.0}, "length_unit": "words"})
    s = pipe.score(
        [
            {
                "prompt_id": "w",
                "completion": f"<answer>{entry['answer']}</answer>",
                "answer": entry["answer"],
                "meta": {"entry": entry},
            }
        ]
    )
    assert s.total[0] == 2.0 and s.correct[0] == 1.0


def test_format_gate_and_add():
    recs = [rec("q", "<think>x</think> Answer: 4"), rec("q", "Answer: 4"), rec("q", "<think>x</think> Answer: 5")]
    gate = load_spec(
        {
            "verifier": "exact",
            "format": "think_answer",
            "base": {"no_answer": -1.0},
            "length_unit": "words",
            "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}],
        }
    )
    s = gate.score(recs)
    # format failures get no_answer and are never shaped
    assert s.total[1] == -1.0
    assert s.values["format"].tolist() == [1.0, 0.0, 1.0]
    add = load_spec(
        {"verifier": "exact", "format": {"name": "think_answer", "mode": "add", "weight": 0.25}, "length_unit": "words"}
    )
    assert add.score(recs).total.tolist() == [1.25, 1.0, 0.25]


def test_data_source_routing_and_unmapped_source():
    pipe = load_spec(
        {"verifier": {"gsm": "exact", "mc": {"name": "choice", "letters": "ABCD"}}, "length_unit": "words"}
    )
    recs = [
        {"prompt_id": "a", "completion": "#### 12", "answer": "12", "data_source": "gsm"},
        {"prompt_id": "b", "completion": "Answer: (C)", "answer": "C", "data_source": "mc"},
        {"prompt_id": "c", "completion": "whatever", "answer": "1", "data_source": "code"},
    ]
    s = pipe.score(recs)
    assert s.correct[:2].tolist() == [1.0, 1.0]
    assert s.status[2] == ERROR and math.isnan(s.correct[2])
    assert "no verifier for data_source 'code'" in s.details[2]
    assert s.to_records(recs)[2]["status"] == ERROR
    assert "status" not in s.to_records(recs)[0]


def test_scores_keep_every_field_and_the_order():
    recs = [rec("q2", "Answer: 4", extra=1), rec("q1", "Answer: 3", meta={"k": [1]})]
    out = load_spec({"verifier": "exact", "length_unit": "chars"}).score_records(recs)
    assert [r["prompt_id"] for r in out] == ["q2", "q1"]
    assert out[0]["extra"] == 1 and out[1]["meta"] == {"k": [1]}
    assert out[0]["reward"] == 1.0 and out[1]["correct"] is False
    assert set(out[0]) == set(recs[0]) | {"reward", "correct", "components"}
    json.dumps(out)  # JSON-serialisable, no NaN


def test_summary_and_units():
    pipe = load_spec({"verifier": "exact"})
    s = pipe.score([rec("q", "Answer: 4"), rec("q", "Answer: 4 5")])  # no num_tokens: falls back to words
    summ = s.summary()
    assert summ["unit"] == "words" and summ["mean_length"] == 2.5 and summ["accuracy"] == 0.5 and summ["records"] == 2


def test_no_verifier_means_unknown_correctness():
    pipe = load_spec({"format": {"name": "think_answer", "mode": "add"}, "length_unit": "words"})
    s = pipe.score([rec("q", "<think>a</think> b"), rec("q", "b")])
    assert np.isnan(s.correct).all() and s.total.tolist() == [1.0, 0.0]


def test_state_persists_step_and_rejects_other_specs(tmp_path):
    path = tmp_path / "state.json"
    spec = {"verifier": "exact", "length_unit": "words", "state": str(path)}
    pipe = load_spec(spec)
    pipe.score([rec("q", "Answer: 4")])
    pipe.score([rec("q", "Answer: 4")])
    assert json.loads(path.read_text())["step"] == 2
    assert load_spec(spec).state.step == 2
    with pytest.raises(StateError, match="different spec"):
        load_spec({**spec, "base": {"wrong": -1}})
    path.write_text("{broken")
    with pytest.raises(StateError, match="corrupt state file"):
        load_spec(spec)


def test_step_from_records_or_argument():
    pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    assert pipe.score([rec("q", "Answer: 4", step=7)]).step == 7
    assert pipe.score([rec("q", "Answer: 4")], step=3).step == 3
    assert pipe.state.step == 8


def test_batch_input_and_empty_batch():
    pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    s = pipe.score(Batch.from_records([]))
    assert len(s) == 0 and s.summary()["records"] == 0


def test_progress_counts_every_record():
    seen = []
    pipe = load_spec({"verifier": {"name": "exact", "extract": ["answer_colon"]}, "length_unit": "words"})
    pipe.score([rec("q", "Answer: 4"), rec("q", "Answer: 4"), rec("q", "nothing")], progress=seen.append)
    assert sum(seen) == 3


def test_math_pipeline_end_to_end_with_workers():
    pipe = load_spec({"verifier": "math", "workers": 1, "timeout_s": 5, "length_unit": "chars"})
    recs = [
        rec("q", r"\boxed{\frac{1}{2}}", answer="0.5"),
        rec("q", r"\boxed{0.5}", answer="0.5"),
        rec("q", r"\boxed{2}", answer="0.5"),
    ]
    try:
        s = pipe.score(recs)
    finally:
        pipe.close()
    assert s.correct.tolist() == [1.0, 1.0, 0.0]


def test_pipeline_pickles_with_its_state():
    import pickle

    pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    pipe.score([rec("q", "Answer: 4")])
    clone = pickle.loads(pickle.dumps(pipe))
    assert clone.state.step == 1 and clone.spec == pipe.spec


def test_summary_counts_zero_variance_groups():
    pipe = load_spec({"verifier": "exact", "length_unit": "words"})
    s = pipe.score(
        [
            rec("a", "Answer: 4"),
            rec("a", "Answer: 4"),
            rec("b", "Answer: 4"),
            rec("b", "Answer: 3"),
            rec("c", "Answer: 1"),
        ]
    )
    summ = s.summary()
    assert summ["groups"] == 3 and summ["zero_variance_groups"] == 1  # a: all correct; c: a group of one is kept


def test_components_sum_to_the_total_with_a_gate():
    pipe = load_spec(
        {
            "verifier": {"name": "exact", "extract": ["answer_colon"]},
            "format": "think_answer",
            "base": {"no_answer": -1.0},
            "length_unit": "words",
            "shaping": [{"name": "repetition", "ngram": 1, "max_penalty": -0.5}, {"name": "repetition", "ngram": 2}],
        }
    )
    s = pipe.score(
        [
            rec("q", "<think>a a a</think> Answer: 4"),
            rec("q", "so so so\nAnswer: 4"),
            rec("q", "<think>b</think> Answer: 5"),
        ]
    )
    assert list(s.components) == pipe.component_names() == ["correctness", "repetition", "repetition_2", "gate"]
    np.testing.assert_allclose(sum(s.components.values()), s.total, rtol=0, atol=1e-12)
    # row 1 is right but fails the format: correctness 1, nothing shaped, the gate takes it to no_answer
    assert (
        s.components["correctness"][1] == 1.0
        and s.components["repetition"][1] == 0.0
        and s.components["gate"][1] == -2.0
    )
    assert s.values["repetition"][1] < 0 and s.values["format"][1] == 0.0  # what the stages measured stays apart
    out = s.to_records([{}, {}, {}])[1]
    assert out["reward"] == -1.0 and out["format_ok"] is False and sum(out["components"].values()) == out["reward"]


def test_the_engine_is_passed_in_and_shared_by_with_engine():
    from rewardsmith.engine import VerificationEngine

    engine = VerificationEngine(workers=1, timeout_s=5.0, cache_size=100)
    pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "hapo"}]}, engine=engine)
    assert pipe.engine is engine
    pipe.score([rec("q", "Answer: 4"), rec("q", "Answer: 4"), rec("q", "Answer: 5")])
    assert engine.stats.checked == 2 and engine.stats.deduped == 1  # verified by the engine given
    other = VerificationEngine(workers=1, timeout_s=5.0, cache_size=100)
    twin = pipe.with_engine(other)
    assert twin.engine is other and twin.state is pipe.state and pipe.engine is engine
    twin.score([rec("q", "Answer: 4")])
    assert other.stats.checked == 1 and pipe.state.step == 2  # one State: the twin's batch advanced it
    twin.close()
    pipe.close()
