"""Turn-level components on hand-computed trajectories: carl, router_r1, tool_call per call, renorm
per turn, format per turn, turn_grpo (and igpo's trajectory histories in test_signals.py)."""

import math

import numpy as np
import pytest

from rewardsmith import RecordError, load_spec
from rewardsmith.advantages.turns import discounted_returns, turn_grpo_advantages
from rewardsmith.registry import SpecError
from rewardsmith.shaping.turns import ROUTER_R1_PRICES, router_format_ok
from rewardsmith.signals import SignalError

MODELS = set(ROUTER_R1_PRICES)


def call(name, args):
    return {"type": "function", "function": {"name": name, "arguments": args}}


def traj(turns, pid="q", answer=None, meta=None, final="done"):
    """A trajectory: a user turn, then for each entry an assistant turn (its calls answered by tools)."""
    msgs = [{"role": "user", "content": "task"}]
    for content, calls in turns:
        msgs.append({"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})})
        msgs += [{"role": "tool", "content": "ok"} for _ in calls]
    if final is not None:
        msgs.append({"role": "assistant", "content": final})
    rec = {"prompt_id": pid, "messages": msgs}
    if answer is not None:
        rec["answer"] = answer
    if meta is not None:
        rec["meta"] = meta
    return rec


# --------------------------------------------------------------------------- carl
def carl_rec(progress, penalties=None, infraction=None, pid="q"):
    meta = {"turn_progress": progress}
    if penalties is not None:
        meta["turn_penalties"] = penalties
    if infraction is not None:
        meta["infraction_turn"] = infraction
    return traj([("step", [])] * (len(progress) - 1), pid=pid, meta=meta)


def test_carl_progress_times_soft_penalties_by_hand():
    pipe = load_spec({"shaping": ["carl"], "length_unit": "words"})
    recs = [
        carl_rec([0.2, 0.3, 0.5], [1.0, {"comfort": 0.5, "ttc": 0.8}, 0.9]),
        carl_rec([0.2, 0.3, 0.5]),  # no penalties: factors 1
        carl_rec([1.0]),  # one turn
    ]
    s = pipe.score(recs)
    assert s.total.tolist() == pytest.approx([0.2 + 0.3 * 0.4 + 0.5 * 0.9, 1.0, 1.0])
    assert s.dense.unit == "turn" and s.dense.rewards[0] == pytest.approx([0.2, 0.12, 0.45])


def test_carl_terminating_infraction_ends_the_reward():
    """CaRL's defaults: terminal reward 0, and 1 subtracted for a hinted infraction (a collision)."""
    pipe = load_spec({"shaping": ["carl"], "length_unit": "words"})
    hinted = carl_rec([0.2, 0.3, 0.5], infraction=1)
    hinted["meta"]["infraction_hint"] = True
    s = pipe.score([hinted, carl_rec([0.2, 0.3, 0.5], infraction=1), carl_rec([0.5], infraction=0)])
    assert s.dense.rewards[0] == pytest.approx([0.2, 0.3 - 1.0, 0.0])
    assert s.total.tolist() == pytest.approx([-0.5, 0.5, 0.5])
    custom = load_spec({"shaping": [{"name": "carl", "terminal_reward": -2.0}], "length_unit": "words"})
    assert custom.score([carl_rec([0.5], infraction=0)]).total.tolist() == pytest.approx([-1.5])


def test_carl_all_zero_progress_and_a_single_turn_record():
    pipe = load_spec({"shaping": ["carl"], "length_unit": "words"})
    single = {"prompt_id": "q", "completion": "x", "meta": {"turn_progress": [0.25, 0.25]}}  # units given freely
    s = pipe.score([carl_rec([0.0, 0.0]), single])
    assert s.total.tolist() == [0.0, 0.5]


@pytest.mark.parametrize(
    "meta, message",
    [
        ({}, r"carl: record 0 needs meta.turn_progress"),
        ({"turn_progress": [0.5]}, r"carl: record 0 has 1 meta.turn_progress entries for 2 assistant turns"),
        ({"turn_progress": [0.5, -1]}, r"must be finite numbers >= 0"),
        (
            {"turn_progress": [0.5, 0.5], "turn_penalties": [1, 1.5]},
            r"turn_penalties\[1\] must be a number in \[0, 1\]",
        ),
        ({"turn_progress": [0.5, 0.5], "turn_penalties": [1, {"ttc": "x"}]}, r"turn_penalties\[1\]\.ttc must be"),
        ({"turn_progress": [0.5, 0.5], "infraction_turn": 2}, r"infraction_turn must be a turn index in \[0, 2\)"),
    ],
)
def test_carl_bad_meta_is_a_clear_error(meta, message):
    rec = traj([("step", [])], meta=meta)
    with pytest.raises(RecordError, match=message):
        load_spec({"shaping": ["carl"], "length_unit": "words"}).score([rec])


# --------------------------------------------------------------------------- router_r1
GOOD = "<think>ask</think><search>meta/llama-3.1-8b-instruct: who wrote Hamlet?</search>"
ROUTE = call("meta/llama-3.1-8b-instruct", {"query": "who wrote Hamlet?"})


def router_traj(final="<think>so</think><answer>Shakespeare</answer>", tokens=100, pid="q", answer="Shakespeare"):
    msgs = [
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "<think>ask</think>", "tool_calls": [ROUTE]},
        {"role": "tool", "content": "William Shakespeare.", "num_tokens": tokens},
        {"role": "assistant", "content": final},
    ]
    return {"prompt_id": pid, "messages": msgs, "answer": answer}


@pytest.mark.parametrize(
    "text, ok",
    [
        (GOOD + "<information>x</information><think>so</think><answer>a</answer>", True),
        ("<think>t</think><answer>a</answer>", True),  # no routing at all
        ("<think>t</think><answer>a</answer> trailing", False),
        ("<answer>a</answer>", False),  # no thinking
        ("<think>...</think><answer>a</answer>", False),
        ("<think>t</think><answer>a</answer><answer>b</answer>", False),
        (GOOD + "<think>so</think><answer>a</answer>", False),  # a search without its information
        ("<think>t</think><search>gpt-9: q</search><information>x</information><answer>a</answer>", False),
        (
            "<think>t</think><search>meta/llama-3.1-8b-instruct</search><information>x</information><answer>a</answer>",
            False,
        ),
        ("<think>t</think><search>LLM-Name: your-query</search><information>x</information><answer>a</answer>", False),
        ("<think>t <answer>a</answer></think><answer>a</answer>", False),  # nesting
        ("<think>t</think><answer>a", False),  # unbalanced
        ("plain text", False),
    ],
)
def test_router_r1_format_check(text, ok):
    assert router_format_ok(text, MODELS) is ok


def test_router_r1_reward_by_hand():
    """Router-R1 (qa_em.compute_score_em, main_ppo.normalize_reward): malformed -1; wrong or no answer 0;
    right (1 − α)·s + α·c with c = 1 − clip((√cost − q05)/(q95 − q05)) over the window."""
    pipe = load_spec(
        {"verifier": "exact", "shaping": [{"name": "router_r1", "cost_coef": 0.1}], "length_unit": "words"}
    )
    recs = [
        router_traj(tokens=100),
        router_traj(tokens=400),
        router_traj(tokens=100, answer="Marlowe"),  # wrong
        router_traj(final="<think>so</think><answer>Shakespeare</answer> (sure)"),  # text after the answer
    ]
    s = pipe.score(recs)
    price = ROUTER_R1_PRICES["meta/llama-3.1-8b-instruct"]
    costs = [math.sqrt(t * price) for t in (100, 400, 100, 100)]
    c = []
    for i, r in enumerate(costs):
        window = np.array(costs[: i + 1])
        lo, hi = (np.percentile(window, 5), np.percentile(window, 95)) if i else (r, r)
        c.append(0.5 if hi - lo < 1e-8 else 1 - float(np.clip((r - lo) / (hi - lo), 0, 1)))
    assert s.values["router_r1"].tolist() == pytest.approx(c)
    assert c[0] == 0.5 and c[1] == 0.0  # the dearer call of the pair gets no cost reward
    assert s.total.tolist() == pytest.approx([0.9 + 0.1 * c[0], 0.9 + 0.1 * c[1], 0.0, -1.0])
    assert (s.components["correctness"] + s.components["router_r1"]).tolist() == pytest.approx(s.total.tolist())
    # the window persists across batches: a third cheap call is normalised against all three so far
    again = pipe.score([router_traj(tokens=100)])
    window = np.array(costs + [costs[0]])
    lo, hi = np.percentile(window, 5), np.percentile(window, 95)
    assert again.values["router_r1"][0] == pytest.approx(1 - np.clip((costs[0] - lo) / (hi - lo), 0, 1))


def test_router_r1_default_alpha_is_outcome_only_and_model_calls_meta():
    pipe = load_spec({"verifier": "exact", "shaping": ["router_r1"], "length_unit": "words"})
    single = {
        "prompt_id": "q",
        "completion": GOOD + "<information>W.S.</information><think>so</think><answer>Shakespeare</answer>",
        "answer": "Shakespeare",
        "meta": {"model_calls": [{"model": "meta/llama-3.1-8b-instruct", "completion_tokens": 50}]},
    }
    assert pipe.score([single, router_traj()]).total.tolist() == [1.0, 1.0]


def test_router_r1_needs_the_routed_calls_tokens():
    rec = router_traj()
    rec["messages"][2] = {"role": "tool", "content": "William Shakespeare."}
    pipe = load_spec({"verifier": "exact", "shaping": ["router_r1"], "length_unit": "words"})
    with pytest.raises(RecordError, match=r"router_r1: record 0 messages\[2\] .* has no num_tokens"):
        pipe.score([rec])
    single = {"prompt_id": "q", "completion": GOOD + "<information>x</information><answer>a</answer>"}
    with pytest.raises(RecordError, match="routes calls in its text; give their tokens in meta.model_calls"):
        pipe.score([single])


# --------------------------------------------------------------------------- tool_call per call
GOLD = [{"name": "calc", "parameters": {"e": "1+1"}}, {"name": "lookup", "parameters": {"k": "x"}}]
C1, C2 = call("calc", '{"e": "1+1"}'), call("lookup", {"k": "x"})


def tool_rec(calls, gold=GOLD):
    return traj([("", [c]) for c in calls], meta={"tool_calls": gold})


@pytest.mark.parametrize("aggregate", ["mean", "min", "sum"])
def test_tool_call_per_call_by_hand(aggregate):
    """ToolRL's R_correct per call in [−3, 3]: exact 3; missing, extra or unparseable −3; calc with a
    wrong value: J(names) 1 + J(keys) 1 + 0 equal values = 2 of S_max 3 → 6·2/3 − 3 = 1."""
    wrong_value = call("calc", '{"e": "2+2"}')
    recs = [
        tool_rec([C1, C2]),
        tool_rec([C1]),
        tool_rec([C1, C2, C1, C1, C1]),
        tool_rec([wrong_value, C2]),
        tool_rec([]),
    ]
    per_call = [[3, 3], [3, -3], [3, 3, -3, -3, -3], [1, 3], [-3, -3]]
    if aggregate == "sum":  # Σ scaled by the reference's 2 calls
        by_hand = [(sum(v) + 2 * 3) / (2 * 6) for v in per_call]
    else:
        agg = min if aggregate == "min" else (lambda v: sum(v) / len(v))
        by_hand = [(agg(v) + 3) / 6 for v in per_call]
    s = load_spec({"verifier": {"name": "tool_call", "aggregate": aggregate}, "length_unit": "words"}).score(recs)
    assert s.values["correctness"].tolist() == pytest.approx([min(1.0, max(0.0, x)) for x in by_hand])
    assert s.correct.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert s.details[2] == f"per_call=[3, 3, -3, -3, -3] ({aggregate})"


def test_tool_call_per_call_edge_cases():
    pipe = load_spec({"verifier": "tool_call", "length_unit": "words"})
    bad = call("calc", "{not json")
    s = pipe.score([tool_rec([bad, C2]), tool_rec([], gold=[]), tool_rec([C1], gold=[])])
    assert s.values["correctness"].tolist() == pytest.approx([0.5, 1.0, 0.0])  # unparseable = −3; none needed
    assert s.details[1].startswith("per_call=[]")
    # calls written in the content's <tool_call> blocks count too
    text = '<tool_call>\n{"name": "calc", "arguments": {"e": "1+1"}}\n</tool_call>'
    rec = traj([(text, []), ("", [C2])], meta={"tool_calls": GOLD})
    rec["messages"] = [m for m in rec["messages"] if m["role"] != "tool" or m is rec["messages"][-2]]
    assert pipe.score([rec]).values["correctness"].tolist() == [1.0]
    # a single-turn record is scored as before
    single = {
        "prompt_id": "q",
        "completion": "<think>t</think>\n<tool_call>\n"
        + '{"name": "calc", "parameters": {"e": "1+1"}}'
        + "\n</tool_call>",
        "meta": {"tool_calls": GOLD[:1]},
    }
    assert pipe.score([single]).correct.tolist() == [1.0]


# --------------------------------------------------------------------------- renorm per turn, format per turn
def test_renorm_per_turn_by_hand():
    pipe = load_spec({"verifier": "exact", "shaping": [{"name": "renorm", "unit": "turn"}], "length_unit": "words"})
    right = traj([("step", [])], answer="done", meta={"turn_rewards": [0.5, 1.0]})
    wrong = traj([("step", [])], answer="nope", meta={"turn_rewards": [0.5, 1.0]})
    s = pipe.score([right, wrong])
    assert s.dense.unit == "turn"
    assert s.components["renorm"].tolist() == pytest.approx([0.5 + 1.0, -0.5 + 0.0])
    with pytest.raises(SignalError, match="record 0 has 1 meta.turn_rewards for 2 assistant turns"):
        pipe.score([traj([("step", [])], answer="done", meta={"turn_rewards": [0.5]})])
    with pytest.raises(SignalError, match="needs meta.turn_rewards"):
        pipe.score([traj([("step", [])], answer="done")])


def test_format_scores_each_assistant_turn():
    pipe = load_spec({"format": {"name": "tag_count", "mode": "add"}, "length_unit": "words"})
    good = "<think>\nx\n</think>\n<answer>\ny\n</answer>"
    s = pipe.score([traj([(good, [])], final=good), traj([("no tags", [])], final=good)])
    assert s.values["format"].tolist() == [1.0, 0.5]  # the mean over the assistant turns


# --------------------------------------------------------------------------- turn_grpo
def test_discounted_returns():
    assert discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5).tolist() == [1.5, 1.0, 2.0]
    assert discounted_returns(np.zeros(0), 0.9).tolist() == []


def test_turn_grpo_by_hand_with_unequal_turn_counts():
    # group 0: three trajectories of 2, 2 and 1 turns; group 1: one of 1 turn
    rewards = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0]), np.array([3.0])]
    adv = turn_grpo_advantages(rewards, np.array([0, 0, 0, 1]), gamma=0.5)
    g0 = np.array([1.0, 0.5, 2.0])  # returns at turn 0
    z0 = (g0 - g0.mean()) / (g0.std(ddof=1) + 1e-6)
    g1 = np.array([0.0, 1.0])  # turn 1 reached by the first two only
    z1 = (g1 - g1.mean()) / (g1.std(ddof=1) + 1e-6)
    assert adv[0].tolist() == pytest.approx([z0[0], z1[0]])
    assert adv[1].tolist() == pytest.approx([z0[1], z1[1]])
    assert adv[2].tolist() == pytest.approx([z0[2]])
    assert adv[3].tolist() == pytest.approx([3.0 / (1 + 1e-6)])  # alone: mean 0, std 1 (verl)
    assert turn_grpo_advantages([], np.zeros(0, dtype=np.int64)) == []


def test_turn_grpo_through_the_pipeline_sparse_all_wrong_and_one_turn_is_grpo():
    spec = {"verifier": "exact", "advantage": {"name": "turn_grpo"}, "length_unit": "words"}
    pipe = load_spec(spec)
    recs = [traj([("a", [])], answer="done"), traj([("a", [])], answer="x"), traj([], answer="done")]
    s = pipe.score(recs)
    assert s.dense.unit == "turn" and s.dense.rewards == [[0.0, 1.0], [0.0, 0.0], [1.0]]
    g0 = np.array([1.0, 0.0, 1.0])
    z0 = (g0 - g0.mean()) / (g0.std(ddof=1) + 1e-6)
    assert s.advantages.tolist() == pytest.approx(z0.tolist())
    g1 = np.array([1.0, 0.0])  # turn 1: reached by the two-turn trajectories only
    z1 = (g1 - g1.mean()) / (g1.std(ddof=1) + 1e-6)
    assert [a[1] for a in s.dense.advantages[:2]] == pytest.approx(z1.tolist())
    # all wrong: no signal anywhere
    s = pipe.score([traj([("a", [])], answer="x"), traj([("a", [])], answer="y")])
    assert s.advantages.tolist() == [0.0, 0.0] and s.dense.advantages == [[0.0, 0.0], [0.0, 0.0]]
    # single-turn records: GRPO exactly
    single = [{"prompt_id": "q", "completion": c, "answer": "4"} for c in ("4", "5", "4", "6")]
    grpo = load_spec({**spec, "advantage": "grpo"}).score(single).advantages
    assert pipe.score(single).advantages.tolist() == pytest.approx(grpo.tolist())


def test_turn_grpo_uses_the_dense_turn_rewards_and_refuses_other_units():
    spec = {"shaping": ["carl"], "advantage": {"name": "turn_grpo"}, "length_unit": "words"}
    s = load_spec(spec).score([carl_rec([1.0, 0.0]), carl_rec([0.0, 1.0])])
    # returns (γ = 1): [1, 0] and [1, 1] — equal at turn 0, so only turn 1 tells them apart
    assert s.advantages.tolist() == pytest.approx([0.0, 0.0])
    assert s.dense.advantages[0][1] < 0 < s.dense.advantages[1][1]
    with pytest.raises(SpecError, match="per-turn advantages; the spec's dense component is per step"):
        load_spec({"shaping": ["renorm"], "advantage": "turn_grpo"})


def test_truncated_trajectory_ending_in_a_tool_result():
    rec = traj([("a", [call("calc", "{}")])], final=None, answer="done", meta={"turn_progress": [0.5]})
    rec["truncated"] = True
    s = load_spec({"verifier": "exact", "shaping": ["carl"], "advantage": "turn_grpo", "length_unit": "words"}).score(
        [rec]
    )
    assert s.total.tolist() == [0.0 + 0.5] and s.dense.rewards == [[0.5]]


def test_turn_advantages_leave_unknown_rows_out():
    from rewardsmith.advantages.base import AdvantageContext, known_advantages
    from rewardsmith.components import build

    est = build("advantage", "turn_grpo", field="advantage")
    turns = [np.array([0.0, 1.0]), np.array([0.0, 0.0]), np.array([5.0])]
    ctx = AdvantageContext(np.array([1.0, 0.0, 5.0]), np.zeros(3, dtype=np.int64), 1, np.ones(3), np.ones(3), turns)
    adv = known_advantages(est, ctx, np.array([True, True, False]))
    a = 0.5 / (0.5**0.5 + 1e-6)  # returns [1, 0] at turn 0 (the unknown row left out): ±0.5 over Bessel std √0.5
    assert adv.tolist() == pytest.approx([a, -a, 0.0])
    assert ctx.turn_advantages[2] == [0.0] and len(ctx.turn_advantages[0]) == 2
