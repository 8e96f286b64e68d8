"""The lab's task generator: hand-checked traces and answers, difficulty, seeds, redundancy."""

import random

import pytest

from rewardsmith.lab.tasks import (
    RISKY_CHECKS,
    CarryStyle,
    TraceStyle,
    annotate,
    carry_necessary_trace,
    carry_trace,
    generate_problems,
    make_problem,
    necessary_steps,
    necessary_trace,
    overthinking_trace,
    running_sums,
    sft_trace,
    slips,
    train_test_split,
    written_sum,
)
from rewardsmith.verifiers.extract import extract_answer


def test_hand_checked_problem_and_trace():
    p = make_problem([3, 5, 8, 2])
    assert p.prompt == "3+5+8+2="
    assert p.answer == "8"  # 18 mod 10
    assert p.difficulty == 4
    assert running_sums([3, 5, 8, 2]) == [3, 8, 6, 8]
    assert necessary_steps([3, 5, 8, 2]) == ["3+5=8;", "8+8=6;", "6+2=8;"]
    assert necessary_trace([3, 5, 8, 2]) == "<think>3+5=8;8+8=6;6+2=8;</think>####8"
    assert make_problem([9, 9, 9, 9, 9, 9, 9]).answer == "3"  # 63 mod 10
    assert make_problem([0, 0]).answer == "0"


def test_answer_extracted_by_the_hash_rule():
    assert extract_answer(necessary_trace([7, 6, 4]), ["hash"]) == "7"


@pytest.mark.parametrize("digits", [[1], [], [10, 2], [-1, 3]])
def test_bad_problems_rejected(digits):
    with pytest.raises(ValueError):
        make_problem(digits)


def test_difficulty_sets_the_number_of_necessary_steps():
    problems = generate_problems(60, seed=1, task="chain")
    assert {p.difficulty for p in problems} == set(range(2, 8))
    for p in problems:
        c = annotate(p.necessary_trace, "chain")
        assert c.necessary_steps == p.difficulty - 1 and c.redundant_steps == 0


def test_difficulties_evenly_spread_and_range_respected():
    problems = generate_problems(30, seed=0, min_terms=3, max_terms=5)
    counts = {k: sum(p.difficulty == k for p in problems) for k in (3, 4, 5)}
    assert counts == {3: 10, 4: 10, 5: 10}
    with pytest.raises(ValueError):
        generate_problems(5, seed=0, min_terms=4, max_terms=3)


def test_seeds_differ_and_are_reproducible():
    assert generate_problems(50, seed=1) == generate_problems(50, seed=1)
    assert generate_problems(50, seed=1) != generate_problems(50, seed=2)
    train, test = train_test_split(200, 100, seed=0)
    assert len(train) == 200 and len(test) == 100
    long_train = {p.digits for p in train if p.difficulty >= 5}
    long_test = [p.digits for p in test if p.difficulty >= 5]
    # 10^5+ chains: different seeds give (almost) disjoint sets
    assert sum(d in long_train for d in long_test) <= 1


def test_check_and_restatement_steps_are_correct_arithmetic():
    rng = random.Random(0)
    trace = overthinking_trace(
        [3, 5, 8], rng, TraceStyle(check_rate=1.0, restate_rate=1.0, verbosity_spread=0.0, guess_rate=0.0)
    )
    assert trace == "<think>3+5=8;chk8-5=3ok;so8;8+8=6;chk6-8=8ok;so6;</think>####6"
    c = annotate(trace, "chain")
    assert (c.necessary_steps, c.redundant_steps, c.other_steps, c.repair_steps) == (2, 4, 0, 0)


def test_zero_rates_give_the_necessary_trace():
    rng = random.Random(0)
    style = TraceStyle(check_rate=0.0, restate_rate=0.0, verbosity_spread=1.0, guess_rate=0.0)
    for p in generate_problems(20, seed=3):
        assert overthinking_trace(p.digits, rng, style) == necessary_trace(p.digits)


def test_guess_is_a_bare_answer():
    rng = random.Random(0)
    assert overthinking_trace([3, 5, 8], rng, TraceStyle(guess_rate=1.0)) == "<think></think>####6"
    assert annotate("<think></think>####6", "chain").steps == 0


@pytest.mark.parametrize("spread", [0.0, 1.0])
def test_redundancy_and_guess_rates_in_generated_traces(spread):
    rng = random.Random(0)
    style = TraceStyle(check_rate=0.5, restate_rate=0.25, verbosity_spread=spread, guess_rate=0.05)
    n_checks = n_restates = n_steps = n_guesses = n_clean = 0
    problems = generate_problems(6000, seed=5)
    for p in problems:
        t = overthinking_trace(p.digits, rng, style)
        c = annotate(t, "chain")
        assert c.other_steps == 0 and t.endswith("####" + p.answer)
        if c.steps == 0:
            n_guesses += 1
            continue
        assert c.necessary_steps == p.difficulty - 1
        n_checks += t.count("chk")
        n_restates += t.count("so")
        n_steps += c.necessary_steps
        n_clean += p.difficulty == 7 and c.redundant_steps == 0
    assert abs(n_checks / n_steps - 0.5) < 0.02
    assert abs(n_restates / n_steps - 0.25) < 0.02
    assert abs(n_guesses / len(problems) - 0.05) < 0.01
    # the spread makes concise long traces common: (1 − 0.5)^6·(1 − 0.25)^6 ≈ 0.3% without it
    sevens = sum(p.difficulty == 7 for p in problems) * 0.95
    assert (n_clean / sevens > 0.03) if spread else (n_clean / sevens < 0.02)


def test_trace_style_validated():
    with pytest.raises(ValueError):
        TraceStyle(check_rate=1.5)
    with pytest.raises(ValueError):
        TraceStyle(guess_rate=-0.1)


def test_annotate_odd_completions():
    for task in ("chain", "carry"):
        assert annotate("", task).steps == annotate("####3", task).steps == 0
        assert annotate("", task).tokens == 0 and annotate("####3", task).tokens == 2
        c = annotate("<think>1+2=3;blah;so3;</think>####3", task)
        assert (c.necessary_steps, c.redundant_steps, c.other_steps) == (1, 1, 1)
        assert annotate("1+2=3;2+2=4", task).necessary_steps == 2  # no think block: the whole text
    with pytest.raises(ValueError):
        annotate("####3", "sums")


# --- the carry task ----------------------------------------------------------------------------

WORKED = "<think>3+5=8;8+8=6;so6;6+9=6;chk6+9=5;5+4=9;chk5+4=9;9+7=7;chk9+7=6;</think>####6"


def test_slip_rule_by_hand():
    assert not slips(2, 9, 9, "carry")  # the first two steps never slip
    assert slips(3, 6, 7, "carry") and not slips(3, 6, 6, "carry")  # 13 slips, 12 does not
    assert written_sum(3, 9, 9, "carry") == 9  # 18: 8, written one more
    assert written_sum(3, 9, 4, "carry") == 4  # 13: 3 → 4
    assert written_sum(4, 9, 1, "carry") == 0  # 10 is safe
    assert written_sum(2, 9, 9, "carry") == 8
    assert sum(slips(3, a, d, "carry") for a in range(10) for d in range(10)) == 21


def test_rounding_slip_rule_by_hand():
    # adding 8 or 9 from the third step on, whatever the running value
    assert not slips(2, 5, 9, "rounding") and slips(3, 0, 9, "rounding") and slips(6, 1, 8, "rounding")
    assert not slips(3, 9, 7, "rounding")  # 16 slips in the carry task, not here
    assert written_sum(3, 0, 9, "rounding") == 0  # 9 written one more: 10 → 0
    assert written_sum(3, 5, 8, "rounding") == 4  # 13: 3 → 4
    assert written_sum(3, 9, 7, "rounding") == 6
    assert sum(slips(3, a, d, "rounding") for a in range(10) for d in range(10)) == 20
    with pytest.raises(ValueError, match="no slips"):
        slips(3, 6, 7, "chain")


def test_carry_necessary_trace_by_hand():
    # 3+5=8, 8+8=16→6, 6+9=15 slips to 6 (checked: 5), 5+4=9; answer 29 mod 10
    assert carry_necessary_trace([3, 5, 8, 9, 4], "carry") == "<think>3+5=8;8+8=6;6+9=6;chk6+9=5;5+4=9;</think>####9"
    p = make_problem([3, 5, 8, 9, 4])
    assert p.task == "carry" and p.answer == "9" and p.necessary_trace == carry_necessary_trace(p.digits, "carry")
    assert make_problem([3, 5, 8, 9, 4], task="chain").necessary_trace == necessary_trace(p.digits)
    # rounding: 6+9 and 5+8 slip (8 and 9 added from step 3 on), 8+8 at step 2 does not
    r = make_problem([3, 5, 8, 9, 8], task="rounding")
    assert r.answer == "3"
    assert r.necessary_trace == "<think>3+5=8;8+8=6;6+9=6;chk6+9=5;5+8=4;chk5+8=3;</think>####3"
    # short chains cannot slip: the three tasks' necessary traces agree
    for task in ("carry", "rounding"):
        for q in generate_problems(30, seed=2, max_terms=3, task=task):
            assert q.necessary_trace == necessary_trace(q.digits)
    with pytest.raises(ValueError):
        make_problem([1, 2], task="sums")


def test_annotation_of_a_worked_trace():
    a = annotate(WORKED)
    # steps: 5 sums; 2 checks repairing a slip (6+9, 9+7); 1 re-check of a safe step + 1 restatement
    assert (a.necessary_steps, a.repair_steps, a.redundant_steps, a.other_steps) == (5, 2, 2, 0)
    # tokens: 5 steps × 6 + <think></think>####6 (4) = 34; checks 7 each; so6; 3 + chk5+4=9; 7
    assert (a.necessary_tokens, a.repair_tokens, a.redundant_tokens, a.other_tokens) == (34, 14, 10, 0)
    assert a.unrepaired_slips == 0 and a.tokens == 58
    assert a.slipped_at == a.repaired_at == (3, 5)  # 6+9 is the third step, 9+7 the fifth
    assert extract_answer(WORKED, ["hash"]) == make_problem([3, 5, 8, 9, 4, 7]).answer


def test_slip_positions_count_steps_only():
    # restatements and checks between the steps do not move a step's position; a slip left unchecked is
    # in slipped_at only, and a check that does not follow its step repairs nothing
    a = annotate("<think>1+2=3;so3;chk1+2=3;3+4=7;7+8=6;8+1=9;chk7+8=5;6+9=6;chk6+9=5;</think>####5")
    assert (a.slipped_at, a.repaired_at, a.unrepaired_slips, a.slipped_steps) == ((3, 5), (5,), 1, 2)
    assert annotate("<think></think>####3").slipped_at == ()


def test_a_missing_check_propagates_the_error():
    digits = [3, 5, 8, 9, 4]
    bare = CarryStyle(risky_check_rate=0.0, safe_check_rate=0.0, restate_rate=0.0, verbosity_spread=0.0, guess_rate=0)
    trace = carry_trace(digits, random.Random(0), bare, "carry")
    # the slipped 6 is carried on: 6+4=0, not 5+4=9
    assert trace == "<think>3+5=8;8+8=6;6+9=6;6+4=0;</think>####0"
    assert extract_answer(trace, ["hash"]) != make_problem(digits).answer
    a = annotate(trace)
    assert a.unrepaired_slips == 1 and a.repair_steps == 0 and a.redundant_steps == 0
    every = CarryStyle(risky_check_rate=1.0, safe_check_rate=0.0, restate_rate=0.0, verbosity_spread=0.0, guess_rate=0)
    assert carry_trace(digits, random.Random(0), every, "carry") == carry_necessary_trace(digits, "carry")


def test_checks_that_repair_nothing_or_recompute_wrongly():
    # a check of a safe step is redundant; one of another step, or with a wrong value, is not a check
    assert annotate("<think>1+2=3;chk1+2=3;</think>####3").redundant_steps == 1
    assert annotate("<think>1+2=3;chk2+2=4;</think>####4").other_steps == 1
    assert annotate("<think>1+2=3;3+4=7;7+8=6;chk7+8=4;</think>####4").other_steps == 1
    # a restatement of the repaired value is redundant
    a = annotate("<think>1+2=3;3+4=7;7+8=6;chk7+8=5;so5;</think>####5")
    assert (a.repair_steps, a.redundant_steps, a.unrepaired_slips) == (1, 1, 0)
    # a restatement of a value the trace does not hold is not redundant work
    assert annotate("<think>1+2=3;so4;</think>####4").other_steps == 1
    # chain-style checks are not carry checks, and carry checks are not chain ones
    assert annotate("<think>1+2=3;chk3-2=1ok;</think>####3").other_steps == 1
    assert annotate("<think>1+2=3;chk1+2=3;</think>####3", "chain").other_steps == 1


@pytest.mark.parametrize("task", ["carry", "rounding"])
def test_slip_traces_check_risky_steps_more_than_safe_ones(task):
    rng = random.Random(0)
    style = CarryStyle()
    risky = risky_checked = safe = safe_checked = guesses = wrong = 0
    problems = generate_problems(6000, seed=4, task=task)
    for p in problems:
        t = sft_trace(p, rng, style)
        a = annotate(t, task)
        assert a.other_steps == 0
        if a.steps == 0:
            guesses += 1
            assert t == f"<think></think>####{p.answer}"
            continue
        assert a.necessary_steps == p.difficulty - 1
        # the answer is the value carried on: right exactly when no slip was left unrepaired
        assert (extract_answer(t, ["hash"]) == p.answer) == (a.unrepaired_slips == 0)
        wrong += a.unrepaired_slips > 0
        risky += a.repair_steps + a.unrepaired_slips
        risky_checked += a.repair_steps
        checks = t.count("chk")
        safe += a.necessary_steps - (a.repair_steps + a.unrepaired_slips)
        safe_checked += checks - a.repair_steps
    p_risky, p_safe = risky_checked / risky, safe_checked / safe
    # E[min(1, r·v)] over v ~ U(0.5, 1.5): 0.9 → 0.45·(1/0.81 − 0.25) + 1.5 − 1/0.9 = 0.832, 0.55 → 0.55
    assert abs(p_risky - 0.832) < 0.02 and abs(p_safe - 0.55) < 0.02
    assert abs(guesses / len(problems) - 0.02) < 0.006
    assert 0.05 < wrong / len(problems) < 0.15  # the base policy's traces are below ceiling


def test_always_checked_slips_leave_only_guesses_wrong():
    style = CarryStyle(**RISKY_CHECKS["always"])
    rng = random.Random(1)
    for p in generate_problems(600, seed=5, task="rounding"):
        t = sft_trace(p, rng, style)
        a = annotate(t, "rounding")
        assert a.unrepaired_slips == 0 and (extract_answer(t, ["hash"]) == p.answer or a.steps == 0)
        # each slipped step is a step adding 8 or 9 from the third on, and is repaired
        risky = sum(1 for i, d in enumerate(p.digits[1:], start=1) if i >= 3 and d in (8, 9))
        assert a.repair_steps == (risky if a.steps else 0)


def test_styles_validated_and_matched_to_the_task():
    with pytest.raises(ValueError):
        CarryStyle(risky_check_rate=1.5)
    with pytest.raises(TypeError):
        sft_trace(make_problem([1, 2]), random.Random(0), TraceStyle())
    with pytest.raises(TypeError):
        sft_trace(make_problem([1, 2], task="chain"), random.Random(0), CarryStyle())


def test_quick_traces_make_concise_long_chains_common():
    """The policy can only compute in a format it has seen: at verbosity U(0.5, 1.5) a fully concise
    seven-term trace is a 0.2% event (the base policy then mistakes the next term in most concise
    seven-term traces, docs/lab.md); quick's style, U(0, 2), makes it 7.6%."""
    from rewardsmith.lab.presets import PRESETS, SELECTIVE_STYLE

    def concise_share(style):
        rng, n, concise = random.Random(0), 0, 0
        for p in generate_problems(12000, seed=3, task="rounding"):
            a = annotate(sft_trace(p, rng, style), "rounding")
            if p.difficulty == 7 and a.steps:
                n, concise = n + 1, concise + (a.redundant_steps == 0)
        return concise / n

    assert concise_share(CarryStyle(**RISKY_CHECKS["always"], verbosity_spread=0.5)) < 0.006
    assert 0.06 < concise_share(SELECTIVE_STYLE) < 0.095
    for name in ("quick", "study", "full"):
        assert PRESETS[name].sft.task == "rounding" and PRESETS[name].sft.style == SELECTIVE_STYLE
