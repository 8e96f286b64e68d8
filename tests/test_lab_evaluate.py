"""Lab evaluation metrics on a fake policy, with hand-computed values."""

import math
import types

import pytest
import torch

from rewardsmith.lab.evaluate import (
    Generation,
    aes,
    compare_to_baseline,
    evaluate_policy,
    necessary_tokens,
    necessary_trace_errors,
    pareto_front,
    score_generations,
)
from rewardsmith.lab.model import build_tokenizer
from rewardsmith.lab.tasks import make_problem

TOK = build_tokenizer()


class ScriptedPolicy(torch.nn.Module):
    """A fake policy whose 'greedy' completion of each prompt is looked up in a script."""

    def __init__(self, script: dict[str, str], stop: bool = True):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.script, self.stop = script, stop

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            prompt = TOK.decode([i for i, m in zip(ids, mask) if m])
            out = TOK(self.script[prompt], add_special_tokens=False)["input_ids"][:max_new_tokens]
            if self.stop and len(out) < max_new_tokens:
                out.append(TOK.eos_token_id)
            rows.append(ids + out)
        width = max(map(len, rows))
        return torch.tensor([r + [TOK.pad_token_id] * (width - len(r)) for r in rows])


PROBLEMS = [make_problem([1, 2], "chain"), make_problem([3, 4], "chain"), make_problem([5, 5, 5], "chain")]
SCRIPT = {
    "1+2=": "<think>1+2=3;chk3-2=1ok;</think>####3",  # correct, 18 tokens + EOS, 1 of 2 steps redundant
    "3+4=": "####7",  # correct, guessed: 2 tokens + EOS, no steps
    "5+5+5=": "<think>5+5=0;0+5=5;</think>####4",  # wrong, 16 tokens + EOS
}


def test_metrics_on_a_scripted_policy():
    r = evaluate_policy(ScriptedPolicy(SCRIPT), TOK, PROBLEMS, max_new_tokens=40, batch_size=2)
    assert r["n"] == 3
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["mean_tokens"] == pytest.approx((19 + 3 + 17) / 3)
    assert r["redundant_share"] == pytest.approx(1 / 4)  # 1 check among 4 steps written
    assert r["no_steps_share"] == pytest.approx(1 / 3)  # "####7" is a bare guess
    assert r["truncated_share"] == 0.0
    assert r["by_difficulty"]["2"] == {
        "n": 2,
        "accuracy": 1.0,
        "mean_tokens": 11.0,
        "redundant_share": 0.5,
        "no_steps_share": 0.5,
        "truncated_share": 0.0,
        "repair_tokens": 0.0,
        "redundant_tokens": 4.0,  # chk3-2=1ok; is 8 tokens, in one of the two completions
        "unrepaired_share": 0.0,
        "slip_check_rate": None,  # the chain task never slips
        "right_check_rate": 1.0,  # the one step written (1+2=3) was re-checked; the guess wrote none
    }
    assert r["by_difficulty"]["3"]["accuracy"] == 0.0 and r["by_difficulty"]["3"]["mean_tokens"] == 17.0
    assert r["samples"][0]["completion"] == SCRIPT["1+2="]


def test_truncated_generations_counted_without_eos():
    r = evaluate_policy(ScriptedPolicy(SCRIPT, stop=False), TOK, PROBLEMS[:1], max_new_tokens=10)
    assert r["mean_tokens"] == 10 and r["truncated_share"] == 1.0 and r["accuracy"] == 0.0


def test_score_generations_edge_cases():
    with pytest.raises(ValueError):
        score_generations(PROBLEMS, [])
    empty = score_generations([], [])
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and empty["by_difficulty"] == {}
    r = score_generations(PROBLEMS[:1], [Generation("", 1, True)])
    assert r["accuracy"] == 0.0 and r["redundant_share"] == 0.0


def test_aes_hand_computed():
    # ΔL = 0.5, ΔAcc = 0 → 0.5
    assert aes(0.9, 50, 0.9, 100) == pytest.approx(0.5)
    # ΔL = 0.25, ΔAcc = +0.1/0.8 = 0.125 → 0.25 + 3·0.125
    assert aes(0.9, 75, 0.8, 100) == pytest.approx(0.625)
    # ΔL = 0.6, ΔAcc = −0.2/0.8 = −0.25 → 0.6 − 5·0.25
    assert aes(0.6, 40, 0.8, 100) == pytest.approx(-0.65)
    # longer and equally accurate: negative
    assert aes(0.5, 120, 0.5, 100) == pytest.approx(-0.2)
    # degenerate baselines stay finite
    assert aes(0.5, 10, 0.0, 100) == pytest.approx(0.9 + 3 * 0.5)
    assert aes(0.5, 10, 0.5, 0.0) == 0.0
    assert aes(0.9, 50, 0.9, 100, alpha=2.0) == pytest.approx(1.0)


def test_compare_to_baseline():
    d = compare_to_baseline({"accuracy": 0.85, "mean_tokens": 30.0}, {"accuracy": 0.9, "mean_tokens": 40.0})
    assert d["token_reduction"] == pytest.approx(0.25)
    assert d["accuracy_change"] == pytest.approx(-0.05)
    assert d["aes"] == pytest.approx(0.25 - 5 * 0.05 / 0.9)
    assert all(
        math.isfinite(v)
        for v in compare_to_baseline(
            {"accuracy": 0.0, "mean_tokens": 0.0}, {"accuracy": 0.0, "mean_tokens": 0.0}
        ).values()
    )


def test_pareto_front():
    pts = {"a": (0.9, 50.0), "b": (0.8, 30.0), "c": (0.8, 40.0), "d": (0.95, 80.0), "e": (0.9, 50.0)}
    # c is dominated by b; a and e tie (neither dominates the other)
    assert pareto_front(pts) == ["b", "a", "e", "d"]
    assert pareto_front({}) == []
    assert pareto_front({"only": (0.1, 5.0)}) == ["only"]


def test_necessary_tokens():
    r = necessary_tokens([make_problem([1, 2]), make_problem([1, 2, 3]), make_problem([4, 4])], TOK)
    assert r["by_difficulty"] == {"2": 11.0, "3": 17.0}
    assert r["mean_tokens"] == pytest.approx(13.0)


def test_sampled_evaluation_reported_beside_greedy():
    r = evaluate_policy(ScriptedPolicy(SCRIPT), TOK, PROBLEMS, max_new_tokens=40, sample_temperature=0.7, seed=3)
    assert r["sampled"]["temperature"] == 0.7
    assert (
        r["sampled"]["accuracy"] == r["accuracy"] and r["sampled"]["mean_tokens"] == r["mean_tokens"]
    )  # the script ignores sampling
    assert "sampled" not in evaluate_policy(ScriptedPolicy(SCRIPT), TOK, PROBLEMS, max_new_tokens=40)


def test_carry_task_repairs_and_unrepaired_slips():
    problems = [make_problem([3, 5, 8, 9, 4]), make_problem([3, 5, 8, 9, 4, 7])]
    script = {
        "3+5+8+9+4=": "<think>3+5=8;8+8=6;6+9=6;6+4=0;</think>####0",  # slip left unchecked: wrong
        "3+5+8+9+4+7=": "<think>3+5=8;8+8=6;so6;6+9=6;chk6+9=5;5+4=9;chk5+4=9;9+7=7;chk9+7=6;</think>####6",
    }
    r = evaluate_policy(ScriptedPolicy(script), TOK, problems, max_new_tokens=80)
    assert r["by_difficulty"]["5"]["accuracy"] == 0.0 and r["by_difficulty"]["5"]["unrepaired_share"] == 1.0
    six = r["by_difficulty"]["6"]
    assert six["accuracy"] == 1.0 and six["unrepaired_share"] == 0.0
    assert six["repair_tokens"] == 14.0 and six["redundant_tokens"] == 10.0
    assert six["redundant_share"] == pytest.approx(2 / 9)
    nec = necessary_tokens(problems, TOK)
    # 3+5=8;8+8=6;6+9=6;chk6+9=5;5+4=9; + framing + EOS; the k = 6 one also repairs 9+7
    assert nec["by_difficulty"] == {"5": 36.0, "6": 49.0} and nec["max_tokens"] == 49


def test_check_selectivity_by_hand():
    """Carry task: slipped steps checked / slipped steps, and right steps re-checked / right steps."""
    from rewardsmith.lab.evaluate import Generation, score_generations

    problems = [make_problem([3, 5, 8, 9, 4]), make_problem([3, 5, 8, 9, 4]), make_problem([1, 2])]
    texts = [
        # 4 steps: 6+9 slips (written 6) and is repaired; 3+5 is re-checked; the rest are not
        "<think>3+5=8;chk3+5=8;8+8=6;6+9=6;chk6+9=5;5+4=9;</think>####9",
        # the slip left unrepaired: the trace goes on from 6 (wrong answer); 8+8 re-checked, restated
        "<think>3+5=8;8+8=6;chk8+8=6;so6;6+9=6;6+4=0;</think>####0",
        "<think>1+2=3;so3;</think>####3",  # one right step, restated only
    ]
    gens = [Generation(t, 20, True) for t in texts]
    r = score_generations(problems, gens)
    assert r["slip_check_rate"] == pytest.approx(1 / 2)  # 2 slipped steps, 1 repaired
    assert r["right_check_rate"] == pytest.approx(2 / 7)  # 3 + 3 + 1 right steps, 2 re-checked
    assert r["by_difficulty"]["2"]["slip_check_rate"] is None
    assert r["by_difficulty"]["2"]["right_check_rate"] == 0.0
    assert r["by_difficulty"]["5"]["slip_check_rate"] == pytest.approx(1 / 2)
    assert r["accuracy"] == pytest.approx(2 / 3)
    # both slips are at step 3 (6+9), one repaired
    assert r["slip_checks_by_step"] == {"3": {"n": 2, "share": 0.5}}


def test_slip_checks_by_step_by_hand():
    from rewardsmith.lab.evaluate import Generation, score_generations

    problems = [make_problem([3, 5, 8, 9, 8, 9]), make_problem([3, 5, 8, 9, 8, 9]), make_problem([1, 2])]
    texts = [
        # rounding slips at steps 3 (6+9), 4 (5+8) and 5 (3+9): the first two repaired, the last not
        "<think>3+5=8;8+8=6;6+9=6;chk6+9=5;so5;5+8=4;chk5+8=3;3+9=3;</think>####3",
        # step 3 left unrepaired: the trace goes on from 6
        "<think>3+5=8;8+8=6;6+9=6;6+8=5;chk6+8=4;4+9=4;chk4+9=3;</think>####3",
        "<think>1+2=3;</think>####3",  # no slip anywhere: no position
    ]
    r = score_generations(problems, [Generation(t, 20, True) for t in texts])
    assert r["slip_checks_by_step"] == {
        "3": {"n": 2, "share": 0.5},  # repaired in the first trace only
        "4": {"n": 2, "share": 1.0},
        "5": {"n": 2, "share": 0.5},  # 3+9 unrepaired in the first, 4+9 repaired in the second
    }


class TeacherPolicy(torch.nn.Module):
    """A fake policy that predicts every next token of its input, except ``overrides``:
    ``{(prompt, i): token}`` makes it predict ``token`` for token ``i`` of that prompt's necessary trace."""

    def __init__(self, problems, overrides):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.prompts = {p.prompt: TOK(p.prompt, add_special_tokens=False)["input_ids"] for p in problems}
        self.overrides = overrides

    def forward(self, input_ids, attention_mask, position_ids):
        batch, width = input_ids.shape
        logits = torch.zeros(batch, width, len(TOK))
        for b, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist())):
            start = width - sum(mask)
            assert position_ids[b, start].item() == 0  # left padding, positions counted from the first real token
            for t in range(start, width - 1):
                logits[b, t, ids[t + 1]] = 1.0
            real = ids[start:]
            prompt = next(text for text, p in self.prompts.items() if real[: len(p)] == p)
            for (text, i), token in self.overrides.items():
                if text == prompt:
                    logits[b, start + len(self.prompts[text]) + i - 1] = 0.0
                    logits[b, start + len(self.prompts[text]) + i - 1, TOK.convert_tokens_to_ids(token)] = 1.0
        return types.SimpleNamespace(logits=logits)


def test_necessary_trace_errors_by_hand():
    problems = [
        make_problem([3, 5, 8, 9, 4], "carry"),  # <think>3+5=8;8+8=6;6+9=6;chk6+9=5;5+4=9;</think>####9
        make_problem([1, 2, 3], "carry"),
        make_problem([4, 4], "carry"),
        make_problem([2, 2, 2, 2], "carry"),
    ]
    n_trace = len(TOK(problems[3].necessary_trace, add_special_tokens=False)["input_ids"])
    overrides = {
        ("3+5+8+9+4=", 5): "7",  # the first result, 8, written 7: an error
        ("1+2+3=", 1): "chk",  # a check where the trace holds the operand 1: a choice, not an error
        ("2+2+2+2=", n_trace - 1): "5",  # the answer after ####, 8, written 5: an error
    }
    policy = TeacherPolicy(problems, overrides)
    for batch_size in (1, 3, 256):  # rows of different lengths share a left-padded batch
        errors = necessary_trace_errors(policy, TOK, problems, batch_size=batch_size)
        assert errors["share"] == 0.5 and errors["n"] == 4
        assert errors["by_difficulty"] == {
            "2": {"share": 0.0, "n": 1},
            "3": {"share": 0.0, "n": 1},
            "4": {"share": 1.0, "n": 1},
            "5": {"share": 1.0, "n": 1},
        }
    perfect = necessary_trace_errors(TeacherPolicy(problems, {}), TOK, problems)
    assert perfect["share"] == 0.0
    assert necessary_trace_errors(policy, TOK, []) == {"share": None, "n": 0, "by_difficulty": {}}
