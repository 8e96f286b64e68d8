"""The multi-turn lab: the calculator environment by hand, and a GRPO run through TRL's own trainer (slow)."""

import random

import pytest

from rewardsmith.lab import multiturn as mt
from rewardsmith.lab.tasks import make_problem

torch = pytest.importorskip("torch")
pytest.importorskip("trl")


def test_calculator_calls_and_necessary_calls():
    assert mt.calculate(8, "+", 8) == 6 and mt.calculate(3, "-", 5) == 8
    assert mt.call_of(";8+8=") == {"name": "calculator", "arguments": {"expression": "8+8"}}
    assert mt.call_of("ok;chk6-8=")["arguments"]["expression"] == "6-8"
    assert mt.call_of(";</think>####6") is None and mt.call_of("<think>=") is None and mt.call_of("8+8=6") is None
    assert [c["arguments"]["expression"] for c in mt.necessary_calls([3, 5, 8, 4])] == ["3+5", "8+8", "6+4"]


def test_sft_segments_habits():
    never = mt.ToolStyle(check_rate=0.0, slip_rate=0.0, guess_rate=0.0)
    assert mt.sft_segments([3, 5, 8], random.Random(0), never) == ["<think>3+5=", "8", ";8+8=", "6", ";</think>####6"]
    always_check = mt.ToolStyle(check_rate=1.0, slip_rate=0.0, guess_rate=0.0)
    assert mt.sft_segments([3, 5], random.Random(0), always_check) == [
        "<think>3+5=", "8", ";chk8-5=", "3", "ok;</think>####8"
    ]  # fmt: skip
    guess = mt.ToolStyle(guess_rate=1.0)
    assert mt.sft_segments([3, 5, 8], random.Random(0), guess) == ["<think></think>####6"]
    slip = mt.sft_segments([3, 5, 8], random.Random(1), mt.ToolStyle(check_rate=0.0, slip_rate=1.0, guess_rate=0.0))
    first = int(slip[0][len("<think>")])
    assert first in (4, 2) and slip[1] == str((first + 5) % 10)  # a wrong operand, answered faithfully
    assert slip[-1].endswith(f"####{(int(slip[3]))}")  # the trajectory ends on the tool's (wrong) running sum


def test_encode_masks_prompt_and_tool_tokens():
    from rewardsmith.lab.model import build_tokenizer

    tok = build_tokenizer()
    enc = mt.encode_segments(tok, "3+5=", ["<think>3+5=", "8", ";</think>####8"])
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["3", "+", "5", "=", "<think>", "3", "+", "5", "=", "8", ";", "</think>", "####", "8", "<eos>"]
    assert enc["completion_mask"] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1]


def test_environment_answers_calls_and_ends_trajectories():
    from rewardsmith.lab.model import build_tokenizer

    tok = build_tokenizer()

    def turn(text):
        t = mt.Trajectory("3+5+8=", [0])
        t.completion_ids = tok(text, add_special_tokens=False)["input_ids"]
        t.env_mask = [1] * len(t.completion_ids)
        t.messages = [{"role": "assistant", "content": text, "num_tokens": len(t.completion_ids)}]
        return t

    t = turn("<think>3+5=")
    mt._step_environment(t, tok, max_completion_length=80, max_calls=12)
    assert not t.done and t.messages[-1] == {"role": "tool", "content": "8", "tool_call_id": "call0"}
    assert t.messages[0]["tool_calls"][0]["function"]["arguments"] == {"expression": "3+5"}
    assert t.env_mask[-1] == 0 and len(t.env_mask) == len(t.completion_ids) == 6
    bad = turn("<think>=")  # a turn closed by "=" with no readable call ends the trajectory, no tool turn
    mt._step_environment(bad, tok, 80, 12)
    assert bad.done and len(bad.messages) == 1
    spent = turn("<think>3+5=")
    mt._step_environment(spent, tok, max_completion_length=5, max_calls=12)  # the budget is spent: no answer
    assert spent.done and spent.messages[-1]["role"] == "assistant"


def test_call_habits_by_hand():
    p = make_problem([3, 5, 8])
    rec = {
        "messages": [
            {"role": "user", "content": p.prompt},
            mt_turn("<think>3+5=", "3+5"),
            {"role": "tool", "content": "8"},
            mt_turn(";chk8-5=", "8-5"),
            {"role": "tool", "content": "3"},
            mt_turn("ok;7+8=", "7+8"),  # slip: the running sum is 8
            {"role": "tool", "content": "5"},
            {"role": "assistant", "content": ";</think>####5"},
        ]
    }
    assert mt.call_habits(rec, p) == {"calls": 3, "checks": 1, "slips": 1, "no_calls": 0}


def mt_turn(text, expr):
    return {"role": "assistant", "content": text, "tool_calls": [{"function": mt.call_of(f"{expr}=")}]}


@pytest.mark.slow  # SFT and two GRPO runs of a tiny policy through TRL (about a minute on 2 cores)
def test_multiturn_grpo_end_to_end(tmp_path, monkeypatch):
    from rewardsmith.lab.tasks import train_test_split

    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    preset = mt.MULTITURN_PRESETS["tiny"]
    train, _ = train_test_split(preset.sft_examples, preset.n_test, 0, preset.min_terms, preset.max_terms)
    base, _, info = mt.sft_policy(preset, train, seed=0)
    # fresh from training, the base must carry no trainer wrapper: a deep copy of an instance ``forward`` bound
    # to the base would make GRPO run and update the base's weights instead of its copy's
    assert not info["cached"] and "forward" not in vars(base)
    results = mt.run_multiturn(preset, seed=0, threads=1)  # the base policy now comes from the cache
    assert set(results["arms"]) == {"base", "outcome", "per_call"}
    for arm in ("outcome", "per_call"):
        curve = results["arms"][arm]["curve"]
        assert [row["step"] for row in curve] == [1, 2]  # TRL logged each GRPO step's reward
        for mode in ("eval", "eval_sampled"):
            e = results["arms"][arm][mode]
            assert 0.0 <= e["accuracy"] <= 1.0 and 0.0 <= e["per_call_score"] <= 1.0 and e["policy_tokens"] > 0
    report = mt.write_multiturn_report(results, tmp_path / "out").read_text()
    assert "| per_call (greedy) |" in report and "| outcome (sampled at T=1.0) |" in report


def test_rollout_func_output_is_aligned():
    """TRL's rollout_func contract with a real (untrained) tiny policy: ids, env mask and log-probs align,
    tool tokens are masked, and each completion's turns are a valid trajectory."""
    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer
    from rewardsmith.records import validate_messages

    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    torch.manual_seed(0)
    trajs = mt.rollout(model, tok, ["3+5+8=", "1+2="], max_completion_length=30, max_calls=3)
    for t in trajs:
        assert len(t.completion_ids) == len(t.env_mask) == len(t.logprobs) <= 30
        validate_messages([{"role": "user", "content": t.prompt}, *t.messages])
        tool_tokens = sum(1 for m in t.messages if m["role"] == "tool")
        assert t.env_mask.count(0) == tool_tokens and t.calls <= 3
        assert sum(m["num_tokens"] for m in t.messages if m["role"] == "assistant") == t.env_mask.count(1)
