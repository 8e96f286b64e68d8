"""The lab's task generator: hand-checked traces and answers, difficulty, seeds, redundancy."""

import random

import pytest

from rewardsmith.lab.tasks import (
    TraceStyle,
    count_steps,
    generate_problems,
    make_problem,
    necessary_steps,
    necessary_trace,
    overthinking_trace,
    running_sums,
    train_test_split,
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
    problems = generate_problems(60, seed=1)
    assert {p.difficulty for p in problems} == set(range(2, 8))
    for p in problems:
        assert count_steps(necessary_trace(p.digits)).necessary == p.difficulty - 1
        assert count_steps(necessary_trace(p.digits)).redundant == 0


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
    c = count_steps(trace)
    assert (c.necessary, c.redundant, c.other) == (2, 4, 0)


def test_zero_rates_give_the_necessary_trace():
    rng = random.Random(0)
    style = TraceStyle(check_rate=0.0, restate_rate=0.0, verbosity_spread=1.0, guess_rate=0.0)
    for p in generate_problems(20, seed=3):
        assert overthinking_trace(p.digits, rng, style) == necessary_trace(p.digits)


def test_guess_is_a_bare_answer():
    rng = random.Random(0)
    assert overthinking_trace([3, 5, 8], rng, TraceStyle(guess_rate=1.0)) == "<think></think>####6"
    assert count_steps("<think></think>####6").total == 0


@pytest.mark.parametrize("spread", [0.0, 1.0])
def test_redundancy_and_guess_rates_in_generated_traces(spread):
    rng = random.Random(0)
    style = TraceStyle(check_rate=0.5, restate_rate=0.25, verbosity_spread=spread, guess_rate=0.05)
    n_checks = n_restates = n_steps = n_guesses = n_clean = 0
    problems = generate_problems(6000, seed=5)
    for p in problems:
        t = overthinking_trace(p.digits, rng, style)
        c = count_steps(t)
        assert c.other == 0 and t.endswith("####" + p.answer)
        if c.total == 0:
            n_guesses += 1
            continue
        assert c.necessary == p.difficulty - 1
        n_checks += t.count("chk")
        n_restates += t.count("so")
        n_steps += c.necessary
        n_clean += p.difficulty == 7 and c.redundant == 0
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


def test_count_steps_on_odd_completions():
    assert count_steps("") == count_steps("####3")
    assert count_steps("").total == 0
    c = count_steps("<think>1+2=3;blah;so3;</think>####3")
    assert (c.necessary, c.redundant, c.other) == (1, 1, 1)
    assert count_steps("1+2=3;2+2=4").necessary == 2  # no think block: the whole text
