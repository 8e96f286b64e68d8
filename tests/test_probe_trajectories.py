"""``probe`` and ``audit`` on trajectory files: tool-call spam, repeated turns, an answer without the
tools; an outcome-only reward accepts them, per-call tool rewards refuse the spam."""

import json

from rewardsmith.cli import main
from rewardsmith.probe import probe
from rewardsmith.probe.trajectories import SPAM, trajectory_exploits, unsure_twin

GOLD = [{"name": "calc", "parameters": {"expr": "17*23"}}]


def call(args):
    return {"type": "function", "function": {"name": "calc", "arguments": json.dumps(args)}}


def traj(pid, answer, use_tool=True, spam=0):
    msgs = [{"role": "system", "content": "Use the calculator."}, {"role": "user", "content": "What is 17*23?"}]
    if use_tool:
        for _ in range(1 + spam):
            msgs += [
                {"role": "assistant", "content": "Let me compute.", "tool_calls": [call({"expr": "17*23"})]},
                {"role": "tool", "content": "391"},
            ]
    msgs.append({"role": "assistant", "content": f"Answer: {answer}"})
    return {"prompt_id": pid, "messages": msgs, "answer": "391", "meta": {"tool_calls": GOLD}}


RECORDS = [traj("q1", "391"), traj("q1", "390"), traj("q1", "391", use_tool=False), traj("q2", "391", spam=3)]


def test_exploits_keep_per_turn_meta_aligned():
    rec = {**traj("q", "391"), "meta": {"turn_progress": [0.5, 0.5], "tool_calls": GOLD}}
    by = {e.cls: e.record for e in trajectory_exploits(rec)}
    spam = by["tool_call_spam"]
    assert sum(len(m.get("tool_calls", [])) for m in spam["messages"]) == 1 + SPAM
    assert spam["meta"]["turn_progress"] == [0.5] * (2 + SPAM)
    assert [m["role"] for m in by["no_tool_answer"]["messages"]] == ["system", "user", "assistant"]
    assert by["no_tool_answer"]["meta"]["turn_progress"] == [0.5]
    assert unsure_twin(rec)["messages"][-1] == {"role": "assistant", "content": "I am not sure."}
    # a trajectory without tools has no spam or no-tool exploit
    assert [e.cls for e in trajectory_exploits(traj("q", "391", use_tool=False))] == ["repeated_turns"]


def test_probe_reports_tool_call_spam_accepted_by_an_outcome_only_reward(tmp_path):
    data = tmp_path / "traj.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    spec = tmp_path / "outcome.yaml"
    spec.write_text("verifier: exact\nlength_unit: words\n")
    report = probe(str(spec), data=RECORDS)
    found = {f.cls for f in report.found}
    assert {"tool_call_spam", "repeated_turns", "no_tool_answer"} <= found
    spam = next(f for f in report.found if f.cls == "tool_call_spam")
    assert spam.reward == spam.honest_reward == 1.0 and '"tool_calls"' in spam.reproduction
    assert main(["probe", str(spec), "--data", str(data), "--json"]) == 1


def test_per_call_tool_rewards_refuse_the_spam():
    spec = {"verifier": {"name": "tool_call", "aggregate": "mean"}, "length_unit": "words"}
    report = probe(spec, data=RECORDS)
    tried = {f.cls: f for f in report.findings if f.cls in ("tool_call_spam", "no_tool_answer")}
    assert set(tried) == {"tool_call_spam", "no_tool_answer"}
    assert not tried["tool_call_spam"].found and tried["tool_call_spam"].reward < tried["tool_call_spam"].honest_reward
    assert not tried["no_tool_answer"].found


def test_audit_counts_tool_call_spam_and_repeated_turns(tmp_path, capsys):
    src, scored = tmp_path / "traj.jsonl", tmp_path / "scored.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: exact\nlength_unit: words\n")
    assert main(["score", str(src), "--spec", str(spec), "-o", str(scored)]) == 0
    capsys.readouterr()
    assert main(["audit", str(scored), "--out", str(tmp_path / "audit")]) == 0
    out = capsys.readouterr().out
    assert "tool-call spam 1, repeated turns 1" in out
    assert "[FLAG] tool_call_spam: 1 of 4 trajectories (25.0%) make one tool call 3+ times (up to 4" in out
    result = json.loads((tmp_path / "audit" / "audit.json").read_text())
    spam = result["metrics"]["trajectories"]["tool_call_spam"]
    assert spam["count"] == 1 and spam["prompt_ids"] == ["q2"] and spam["max_repeats"] == 4
    # raising the threshold clears the flag
    assert main(["audit", str(scored), "--out", str(tmp_path / "a2"), "--threshold", "repeated_call=5"]) == 0
    assert "[ ok ] tool_call_spam: 0 of 4" in capsys.readouterr().out


def test_single_turn_audit_has_no_trajectory_flags(tmp_path):
    from rewardsmith.analysis.audit import audit
    from rewardsmith.analysis.scored import ScoredRollouts

    recs = [{"prompt_id": "q", "completion": "a b", "reward": float(i % 2), "correct": bool(i % 2)} for i in range(4)]
    result = audit(ScoredRollouts.from_records(recs, unit="words"))
    assert "trajectories" not in result["metrics"]
    assert {f["name"] for f in result["flags"]}.isdisjoint({"tool_call_spam", "repeated_turns"})
