"""``per_turn``: a verifier run on each assistant turn against ``meta.turn_references``, hand-computed."""

import math

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.registry import SpecError

BASE = {"correct": 1.0, "wrong": -0.5, "no_answer": -1.0}


def conversation(pid, answers, references, **extra):
    """One user question per assistant turn; ``answers`` are the assistant turns' contents."""
    msgs = [{"role": "system", "content": "Answer each question."}]
    for k, a in enumerate(answers):
        msgs += [{"role": "user", "content": f"question {k}"}, {"role": "assistant", "content": a}]
    return {"prompt_id": pid, "messages": msgs, "meta": {"turn_references": references}, **extra}


def spec(aggregate="mean", inner="exact", **extra):
    return {
        "verifier": {"name": "per_turn", "inner": inner, "aggregate": aggregate},
        "base": BASE,
        "length_unit": "words",
        **extra,
    }


# turn 0 right (value 1), turn 1 unchecked, turn 2 wrong (value -0.5): two references, three turns
THREE = conversation("q", ["Answer: 4", "Glad to help.", "Answer: 8"], ["4", None, "9"])


@pytest.mark.parametrize(
    "aggregate, reward, dense, score",
    [
        ("mean", 0.25, [0.5, 0.0, -0.25], 0.5),  # (1 − 0.5)/2; each checked turn's value / 2
        ("sum", 0.5, [1.0, 0.0, -0.5], 0.5),  # 1 − 0.5; the row's verdict is the turns' mean score
        ("min", -0.5, [0.0, 0.0, -0.5], 0.0),  # on the first turn with the minimum
        ("last", -0.5, [0.0, 0.0, -0.5], 0.0),  # the last checked turn
    ],
)
def test_three_turns_two_references_by_hand(aggregate, reward, dense, score):
    with load_spec(spec(aggregate)) as pipe:
        s = pipe.score([THREE])
        out = s.to_records([THREE])[0]
    assert s.total.tolist() == [reward] and s.components["correctness"].tolist() == [reward]
    assert s.dense.unit == "turn" and s.dense.rewards == [dense]
    assert s.dense.verdicts == [[1.0, None, 0.0]]  # the unchecked turn: null, not 0
    assert s.values["correctness"].tolist() == [score] and s.correct.tolist() == [0.0] and s.status == ["ok"]
    assert out["dense"] == {"unit": "turn", "rewards": dense, "verdicts": [1.0, None, 0.0]}
    assert s.details[0] == f"per_turn=[1, -, 0] ({aggregate})"


def test_all_turns_right_is_correct_and_a_turn_without_answer_pays_no_answer():
    right = conversation("q", ["Answer: 4", "Answer: 9"], ["4", "9"])
    with load_spec(spec("mean")) as pipe:
        s = pipe.score([right])
    assert s.total.tolist() == [1.0] and s.correct.tolist() == [1.0] and s.dense.rewards == [[0.5, 0.5]]
    # choice finds no letter in "I am not sure.": that turn is paid no_answer (-1), the other correct (1)
    unsure = conversation("q", ["The answer is (B).", "I am not sure."], ["B", "C"])
    with load_spec(spec("sum", inner={"name": "choice", "letters": "ABCD"})) as pipe:
        s = pipe.score([unsure])
    assert s.total.tolist() == [0.0] and s.dense.rewards == [[1.0, -1.0]] and s.status == ["ok"]
    assert s.dense.verdicts == [[1.0, 0.0]]
    # every checked turn without an answer: the row has none either
    with load_spec(spec("mean", inner={"name": "choice", "letters": "ABCD"})) as pipe:
        s = pipe.score([conversation("q", ["hm", "no idea"], ["B", "C"])])
    assert s.status == ["no_answer"] and s.total.tolist() == [-1.0] and s.dense.rewards == [[-0.5, -0.5]]


def test_a_timeout_on_one_turn_is_unknown_not_zero():
    rec = conversation("q", ["4", "hang", "9"], ["4", "x", "9"])
    body = {"verifier": {"name": "per_turn", "inner": "hostile:HostileVerifier"}, "length_unit": "words"}
    with load_spec({**body, "timeout_s": 0.5, "base": BASE}) as pipe:
        s = pipe.score([rec])
        out = s.to_records([rec])[0]
    # the hung turn's verdict is unknown (null), paid `wrong` (-0.5) like any unknown verdict; the others count
    assert s.dense.verdicts == [[1.0, None, 1.0]] and out["dense"]["verdicts"] == [1.0, None, 1.0]
    assert s.status == ["timeout"] and math.isnan(s.correct[0]) and out["correct"] is None
    assert out["status"] == "timeout" and "per_turn=[1, timeout, 1] (mean)" in s.details[0]
    assert s.total.tolist() == pytest.approx([(1 - 0.5 + 1) / 3]) and s.dense.rewards[0] == pytest.approx(
        [1 / 3, -0.5 / 3, 1 / 3]
    )


def test_single_turn_records_and_trajectories_without_references_score_as_the_inner_verifier():
    records = [
        {"prompt_id": "a", "completion": "Answer: 4", "answer": "4"},
        {"prompt_id": "a", "completion": "Answer: 5", "answer": "4"},
        {"prompt_id": "b", "completion": "", "answer": "4"},
        {"prompt_id": "b", "completion": "Answer: 4", "answer": None},
        {
            "prompt_id": "c",
            "answer": "391",
            "messages": THREE["messages"][:-1] + [{"role": "assistant", "content": "391"}],
        },
    ]
    plain = {"verifier": "exact", "base": BASE, "length_unit": "words", "advantage": "grpo"}
    with load_spec(plain) as a, load_spec({**plain, "verifier": {"name": "per_turn", "inner": "exact"}}) as b:
        sa, sb = a.score(records), b.score(records)
    assert np.array_equal(sa.total, sb.total) and np.array_equal(sa.correct, sb.correct, equal_nan=True)
    assert sa.status == sb.status and sa.details == sb.details and np.array_equal(sa.advantages, sb.advantages)
    assert sa.components.keys() == sb.components.keys()
    # one turn each, and the trajectory's last turn alone is checked (against `answer`)
    assert sb.dense.rewards == [[1.0], [-0.5], [-1.0], [-0.5], [0.0, 0.0, 1.0]]


def test_turn_grpo_takes_the_per_turn_rewards():
    # sum with base {1, 0, 0}: turn rewards are the verdicts on checked turns, 0 on the unchecked one
    group = [
        conversation("q", ["4", "fine", "9"], ["4", None, "9"]),  # r = [1, 0, 1]
        conversation("q", ["4", "fine", "8"], ["4", None, "9"]),  # r = [1, 0, 0]
        conversation("q", ["5", "9"], ["4", "9"]),  # r = [0, 1]
    ]
    body = {"verifier": {"name": "per_turn", "inner": "exact", "aggregate": "sum"}, "length_unit": "words"}
    with load_spec({**body, "advantage": {"name": "turn_grpo", "gamma": 0.5}}) as pipe:
        s = pipe.score(group)
    assert s.total.tolist() == [2.0, 1.0, 1.0] and s.dense.rewards == [[1, 0, 1], [1, 0, 0], [0, 1]]
    # returns G_t = r_t + 0.5·G_{t+1}: [1.25, 0.5, 1], [1, 0, 0], [0.5, 1]
    # t=0 over {1.25, 1, 0.5}: mean 11/12, Bessel std sqrt(((1/3)² + (1/12)² + (5/12)²)/2) = sqrt(7/48)
    # t=1 over {0.5, 0, 1}: mean 0.5, std 0.5; t=2 over {1, 0}: mean 0.5, std sqrt(0.5)
    s0, s2 = math.sqrt(7 / 48), math.sqrt(0.5)
    expected = [
        [(1.25 - 11 / 12) / (s0 + 1e-6), 0.0, 0.5 / (s2 + 1e-6)],
        [(1 - 11 / 12) / (s0 + 1e-6), -0.5 / (0.5 + 1e-6), -0.5 / (s2 + 1e-6)],
        [(0.5 - 11 / 12) / (s0 + 1e-6), 0.5 / (0.5 + 1e-6)],
    ]
    for got, want in zip(s.dense.advantages, expected):
        assert got == pytest.approx(want, abs=1e-12)
    assert s.advantages.tolist() == pytest.approx([row[0] for row in expected], abs=1e-12)


def test_repeating_the_right_answer_in_every_turn_earns_one_credit_per_reference():
    honest = conversation("q", ["391", "Glad to help."], ["391", None])
    spam = conversation("q", ["391", "391", "391"], ["391", None, None])
    with load_spec(spec("sum")) as pipe:
        s = pipe.score([honest, spam])
    assert s.total.tolist() == [1.0, 1.0] and s.dense.rewards == [[1.0, 0.0], [1.0, 0.0, 0.0]]


def test_probe_repeated_turns_gain_no_credit_from_a_copied_reference():
    from rewardsmith.probe import probe
    from rewardsmith.probe.trajectories import SPAM, trajectory_exploits

    rec = {**conversation("q", ["391", "Answer: 17"], ["391", "17"]), "answer": "17"}
    repeated = next(e.record for e in trajectory_exploits(rec) if e.cls == "repeated_turns")
    assert repeated["meta"]["turn_references"] == ["391"] + [None] * SPAM + ["17"]  # the copies are unchecked
    report = probe(spec("sum"), data=[rec, conversation("q", ["390", "Answer: 17"], ["391", "17"])])
    (finding,) = [f for f in report.findings if f.cls == "repeated_turns"]
    assert finding.reward <= finding.honest_reward == 2.0  # six copies of the right turn still earn one credit


def test_identical_turns_are_verified_once():
    recs = [conversation("q", ["4", "9"], ["4", "9"]), conversation("q", ["4", "9"], ["4", "9"])]
    with load_spec(spec()) as pipe:
        pipe.score(recs)
        assert pipe.engine.stats.checked == 2 and pipe.engine.stats.deduped == 2


def test_bad_references_and_specs():
    rows = [
        conversation("q", ["4", "9"], ["4"]),  # one entry for two turns
        conversation("q", ["4", "9"], "4"),  # not a list
        conversation("q", ["4", "9"], [None, None]),  # nothing to check
    ]
    with load_spec(spec()) as pipe:
        s = pipe.score(rows)
    assert s.status == ["error", "error", "bad_reference"] and s.total.tolist() == [-0.5] * 3
    assert "meta.turn_references has 1 entries for 2 assistant turns" in s.details[0]
    assert "must be a list" in s.details[1] and "no assistant turn has a reference" in s.details[2]
    with pytest.raises(SpecError, match="tool_call cannot run per turn"):
        load_spec(spec(inner="tool_call"))
    with pytest.raises(SpecError, match="verifier.inner: unknown verifier 'nope'"):
        load_spec(spec(inner="nope"))
    with pytest.raises(SpecError, match="at most one component with per-unit"):
        load_spec(spec(shaping=[{"name": "carl"}]))
    with pytest.raises(SpecError, match="aggregate"):
        load_spec(spec(aggregate="max"))


def test_a_trl_reward_function_runs_per_turn_with_the_turns_columns(tmp_path):
    import ast

    log = tmp_path / "calls.txt"
    rec = conversation("q", ["#### 4", "ok", "#### 8"], ["4", None, "9"])
    rec["meta"]["log"] = str(log)
    with load_spec(spec("sum", inner={"name": "userpkg.components:hash_answer"})) as pipe:
        s = pipe.score([rec])
    assert s.dense.rewards == [[1.0, 0.0, -0.5]] and s.dense.verdicts == [[1.0, None, 0.0]]
    with load_spec(spec(inner={"name": "userpkg.components:echo_columns"})) as pipe:
        pipe.score([rec])
    calls = [ast.literal_eval(line) for line in log.read_text().splitlines()]
    seen = {(c, p, a) for call in calls for c, p, a in zip(call["completions"], call["prompts"], call["answer"])}
    # each checked turn with the user message before it and its own reference; the unchecked turn never
    assert seen == {("#### 4", "question 0", "4"), ("#### 8", "question 2", "9")}
