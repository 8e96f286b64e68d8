"""Shapers side by side with the authors' own formulas, re-implemented here from their code
(loops over rollouts, as they wrote them) on random groups and many settings.

Sources (repository@commit, file):
- PAR LSC: PorUna-byte/PAR@b8caf40, trainers/reward_shaper.py + utils/utils.py
- format-length surrogate: insightLLM/rl-without-gt@c1e2077, rl/verl/lib/src/rewards/math_reward.py
- efficient reasoning: Zanette-Labs/efficient-reasoning@e3611e4, reward_server/math_server.py
- Kimi (LASER's reimplementation), LASER, LASER-D candidates: hkust-nlp/Laser@c9e7c4e,
  verl/utils/reward_score/length_penalty.py, constants.py
- L1-Exact / L1-Max: cmu-l3/l1@93dd330, math_reward.py
- cosine: eddycmu/demystify-long-cot@e90cf9b, openrlhf/openrlhf/reward/cosine.py
- DLER advantage boost: NVlabs/DLER@ea7d4f7, verl-dler/verl/workers/actor/dp_actor.py
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

import numpy as np
import pytest
from scipy.stats import norm

from _shaping import make_ctx, run
from rewardsmith.advantages.reinforce import reinforce_baseline_advantage
from rewardsmith.shaping import BaseValues
from rewardsmith.shaping.laser import candidate_lengths
from rewardsmith.shaping.reward_model import lsc_reward

LASER_BASE = BaseValues(1.0, -0.5, -1.0)


def random_groups(rng, n_groups, size, max_len=4000):
    groups, lengths, correct, answered, truncated = [], [], [], [], []
    for g in range(n_groups):
        n = size if size else int(rng.integers(1, 9))
        p_correct = rng.random()
        for _ in range(n):
            groups.append(f"g{g}")
            lengths.append(int(rng.integers(0, max_len)))
            ok = rng.random() < p_correct
            correct.append(1.0 if ok else 0.0)
            answered.append(bool(ok or rng.random() < 0.6))
            truncated.append(bool(rng.random() < 0.2))
    return groups, lengths, correct, answered, truncated


SETTINGS = [(seed, n_groups, size) for seed in range(6) for n_groups, size in ((1, 8), (4, 4), (3, 0), (6, 16))]


# --------------------------------------------------------------------------- PAR: LSC
@pytest.mark.parametrize("seed", range(20))
def test_lsc_matches_pars_reward_shaper(seed):
    rng = np.random.default_rng(seed)
    refs = [rng.normal(rng.normal(), rng.uniform(0.01, 3), size=int(rng.integers(1, 11))) for _ in range(16)]
    r = rng.normal(0, 3, size=16)

    def theirs(reward, ref):
        ref = list(ref)
        sd = statistics.stdev(ref) if len(ref) > 1 else 0.0  # their std(sample=True); n = 1 keeps n
        r85 = norm.ppf(0.85, loc=sum(ref) / len(ref), scale=sd + 1e-5)
        return math.log(1 / (1 + math.exp(-(reward - r85))))

    np.testing.assert_allclose(lsc_reward(r, refs), [theirs(a, b) for a, b in zip(r, refs)], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- format-length surrogate
@pytest.mark.parametrize("seed", range(10))
def test_format_length_matches_rl_without_gt(seed):
    rng = np.random.default_rng(seed)
    texts = [
        "<think>a</think> \\boxed{3}",
        "<think>a</think> nothing",
        "\\boxed{3}",
        "nothing",
        "<think>open \\boxed{3}",
    ]
    n = 40
    chosen = [texts[i] for i in rng.integers(0, len(texts), n)]
    lengths = rng.integers(0, 3072, n).tolist()  # their generation limit is max_len: x <= 1

    def theirs(text, length, p=0.5, max_length=3072):
        soft = 1.0 if ("<think>" in text and "</think>" in text.split("<think>", 1)[1]) else 0.0
        answer = 1.0 if "\\boxed{3}" in text else 0.0
        x = length / max_length
        y = 1 - (1 - x / p) ** 2 if x <= p else 1 - 2 * ((x - p) / (1 - p)) ** 2
        return (soft + answer) * 0.5 + y if answer > 0 else min(0.0, y)

    _, ours = run("format_length", make_ctx(lengths, [None] * n, completions=chosen))
    np.testing.assert_allclose(ours, [theirs(t, L) for t, L in zip(chosen, lengths)], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- efficient reasoning
@pytest.mark.parametrize("seed,n_groups,size", SETTINGS)
@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.4])
def test_efficient_reasoning_matches_the_authors_server(seed, n_groups, size, alpha):
    groups, lengths, correct, answered, truncated = random_groups(np.random.default_rng(seed), n_groups, size)

    def theirs():
        # the server's two passes: collect correct, EOS-terminated lengths per question, then score
        lens = defaultdict(list)
        for g, L, c, t in zip(groups, lengths, correct, truncated):
            accuracy = 0 if t else c  # check_eos: no EOS -> accuracy 0
            if accuracy > 0:
                lens[g].append(L)
        out = []
        for g, L, c, t in zip(groups, lengths, correct, truncated):
            accuracy = 0 if t else c
            if accuracy > 0:
                rel = (L - np.mean(lens[g])) / (np.std(lens[g]) + 1e-7)
                out.append(accuracy * (1 - alpha * (1 / (1 + np.exp(-rel)))))
            else:
                out.append(0.0)
        return out

    ctx = make_ctx(lengths, correct, groups, truncated=truncated)  # base correct 1 / wrong 0 = the server's accuracy
    new, _ = run("efficient_reasoning", ctx, alpha=alpha)
    np.testing.assert_allclose(new, theirs(), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- Kimi, LASER
@pytest.mark.parametrize("seed,n_groups,size", SETTINGS)
@pytest.mark.parametrize("coef", [0.4, 1.0])
def test_kimi_matches_lasers_compute_kimi_penalty(seed, n_groups, size, coef):
    groups, lengths, correct, answered, _ = random_groups(np.random.default_rng(seed), n_groups, size)
    scores = [1.0 if c else (-0.5 if a else -1.0) for c, a in zip(correct, answered)]

    def theirs(epsilon=1e-6):
        by = defaultdict(list)
        for g, L in zip(groups, lengths):
            by[g].append(L)
        out = []
        for g, L, s in zip(groups, lengths, scores):
            hi, lo = max(by[g]), min(by[g])
            lam = 0.0 if hi == lo else 0.5 - (L - lo) / (hi - lo + epsilon)
            out.append(s + coef * lam if s == 1.0 else (s + coef * min(0, lam) if s == -0.5 else s))
        return out

    new, _ = run("kimi", make_ctx(lengths, correct, groups, base_values=LASER_BASE, answered=answered), coef=coef)
    singles = {g for g in groups if groups.count(g) == 1}  # their code compares a lone length with 0..1: not followed
    keep = [g not in singles for g in groups]
    np.testing.assert_allclose(new[keep], np.array(theirs())[keep], rtol=0, atol=1e-5)  # their epsilon 1e-6 in the span


@pytest.mark.parametrize("seed,n_groups,size", SETTINGS)
@pytest.mark.parametrize("mode", ["reward", "penalty", "hybrid"])
def test_laser_matches_compute_length_reward_larse(seed, n_groups, size, mode):
    groups, lengths, correct, answered, _ = random_groups(np.random.default_rng(seed), n_groups, size)
    scores = [1.0 if c else (-0.5 if a else -1.0) for c, a in zip(correct, answered)]
    target, alpha = 2048, 0.5

    def theirs():
        out = []
        for L, s in zip(lengths, scores):
            if s == 1.0 and mode in ("reward", "hybrid") and target >= L:
                s += alpha
            elif s == 1.0 and mode in ("penalty", "hybrid") and target < L:
                s -= alpha
            out.append(s)
        return out

    new, _ = run(
        "laser",
        make_ctx(lengths, correct, groups, base_values=LASER_BASE, answered=answered),
        target=target,
        alpha=alpha,
        mode=mode,
    )
    np.testing.assert_allclose(new, theirs(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "lower,upper,interval",
    [(512, 8192, 1024), (256, 4096, 512), (1024, 8192, 1024), (2048, 7000, 1024), (100, 900, 200), (1000, 1000, 24)],
)
def test_laser_d_candidates_match_get_length_threshold(lower, upper, interval):
    theirs = (
        [lower] + list(range(1024, upper + interval, interval))
        if lower < 1024
        else list(range(lower, upper + interval, interval))
    )
    assert candidate_lengths(lower, upper, interval).tolist() == theirs


# --------------------------------------------------------------------------- L1
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("alpha", [3e-4, 1e-3, 0.01])
def test_l1_exact_and_max_match_the_authors_math_reward(seed, alpha):
    rng = np.random.default_rng(seed)
    n = 50
    lengths = rng.integers(0, 8000, n).tolist()
    targets = rng.integers(100, 6000, n).tolist()
    correct = (rng.random(n) < 0.5).astype(float).tolist()
    metas = [{"target_length": t} for t in targets]

    def exact(L, t, c):  # get_delta_score_linear, additive
        return (1 - abs(L - t) * alpha) - 1 + c

    def maximum(L, t, c):  # get_delta_score_linear_both with a negative (max-budget) target, multiplied
        sc = max(-1, min(1, -alpha * (L - t)))
        return max(0, (sc + 1) / 2) * c

    new, _ = run("l1_exact", make_ctx(lengths, correct, metas=metas), alpha=alpha)
    np.testing.assert_allclose(new, [exact(*a) for a in zip(lengths, targets, correct)], rtol=0, atol=1e-12)
    new, _ = run("l1_max", make_ctx(lengths, correct, metas=metas), alpha=alpha)
    np.testing.assert_allclose(new, [maximum(*a) for a in zip(lengths, targets, correct)], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- cosine
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("values", [(-1.0, 0.0, 0.0, 1.0), (-10.0, 0.0, 1.0, 2.0), (-1.0, -0.5, 0.5, 1.0)])
@pytest.mark.parametrize("exceed", [None, -10.0])
def test_cosine_matches_the_authors_cosine_scaled_sparse_reward(seed, values, exceed):
    min_wrong, max_wrong, min_correct, max_correct = values
    rng = np.random.default_rng(seed)
    n, max_len = 60, 4096
    lengths = rng.integers(0, max_len + 1, n).tolist()
    correct = (rng.random(n) < 0.5).astype(float).tolist()

    def theirs(L, score):
        if max_len <= L + 16:
            return exceed if exceed is not None else 0  # exceed_length None -> 0
        lo, hi = (min_correct, max_correct) if score == 1 else (max_wrong, min_wrong)
        return lo + 0.5 * (hi - lo) * (1.0 + math.cos(L / max_len * math.pi))

    opts = dict(
        max_len=max_len,
        min_value_wrong=min_wrong,
        max_value_wrong=max_wrong,
        min_value_correct=min_correct,
        max_value_correct=max_correct,
    )
    if exceed is not None:
        opts["exceed_penalty"] = exceed
    new, _ = run("cosine", make_ctx(lengths, correct), **opts)  # no exceed given: the default, as theirs
    np.testing.assert_allclose(new, [theirs(L, c) for L, c in zip(lengths, correct)], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- DLER boost
@pytest.mark.parametrize("seed,n_groups,size", SETTINGS)
@pytest.mark.parametrize("boost", [0.1, 0.5])
def test_dler_boost_matches_boost_high_score_advantages(seed, n_groups, size, boost):
    rng = np.random.default_rng(seed)
    groups, lengths, correct, _, truncated = random_groups(rng, n_groups, size)
    reward = np.array([c * (0.1 if t else 1.0) for c, t in zip(correct, truncated)])  # DLER's no-EOS penalty_coef
    reward[rng.random(len(reward)) < 0.1] = 1.0 - 5e-6  # within their 1e-5 tolerance
    group = np.unique(groups, return_inverse=True)[1]
    plain = reinforce_baseline_advantage(reward, group, n_groups, np.array(lengths, float) + 1)
    boosted = reinforce_baseline_advantage(reward, group, n_groups, np.array(lengths, float) + 1, correct_boost=boost)
    theirs = plain + np.array([boost if s >= 1.0 - 1e-5 else 0.0 for s in reward])
    np.testing.assert_allclose(boosted, theirs, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- ThinkPrune
def test_thinkprune_grades_the_cut_text():
    # a cut rollout holding a correct answer is paid (ThinkPrune); DLER zeroes it; over-budget rows score as wrong
    ctx = make_ctx([100, 100, 900], [1, 0, 1], truncated=[True, True, False])
    assert run("truncation", ctx, max_len=500, grade_cut_text=True)[0].tolist() == [1.0, 0.0, 0.0]
    assert run("truncation", ctx, max_len=500)[0].tolist() == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- the new options, by hand
def test_kimi_and_laser_de_leave_unanswered_rollouts_unshaped_unless_asked():
    # lengths 100..400: λ = 0.5, 0.1667, -0.1667, -0.5; rows 2 and 3 wrong, row 3 without an answer
    ctx = make_ctx([100, 200, 300, 400], [1, 1, 0, 0], answered=[True, True, True, False])
    assert run("kimi", ctx)[1].tolist() == pytest.approx([0.5, 0.5 - 1 / 3, -0.5 + 1 / 3, 0.0])
    assert run("kimi", ctx, shape_unanswered=True)[1].tolist() == pytest.approx([0.5, 0.5 - 1 / 3, -0.5 + 1 / 3, -0.5])
    opts = dict(lower=10, upper=50, interval=10, anchor=None, repetition_threshold=1.0)
    ctx = make_ctx([100, 100], [0, 0], answered=[True, False], completions=["a b c d e f", "a b c d e f"])
    assert run("laser_de", ctx, **opts)[1].tolist() == [0.5, 0.0]  # explore the long wrong answer only
    assert run("laser_de", ctx, **opts, shape_unanswered=True)[1].tolist() == [0.5, 0.5]


def test_efficient_reasoning_truncated_rollouts_by_hand():
    # correct lengths 10, 30 and a truncated correct 1000: excluded -> z = ∓1; the cut one scores base.wrong
    ctx = make_ctx([10, 30, 1000], [1, 1, 1], truncated=[False, False, True])
    new, comp = run("efficient_reasoning", ctx, alpha=0.2)
    sig1 = 1 / (1 + math.exp(-1 / (1 + 1e-8)))  # std 10 + 1e-7
    assert new.tolist() == pytest.approx([1 - 0.2 * (1 - sig1), 1 - 0.2 * sig1, 0.0])
    assert comp[2] == 0.0
    new, _ = run("efficient_reasoning", ctx, alpha=0.2, exclude_truncated=False)  # counted and shaped as any other
    assert new[2] < new[1] < new[0] < 1.0 and new[2] > 0.8


def test_reinforce_baseline_boost_by_hand():
    reward, group = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1])
    plain = reinforce_baseline_advantage(reward, group, 2)
    boosted = reinforce_baseline_advantage(reward, group, 2, correct_boost=0.1)
    assert (boosted - plain).tolist() == pytest.approx([0.1, 0.0, 0.1, 0.1])
    # all-equal group still gets the boost (DLER adds it after the advantage); zero total weight too
    assert reinforce_baseline_advantage(reward, group, 2, length=np.zeros(4), correct_boost=0.1).tolist() == [
        0.1,
        0.0,
        0.1,
        0.1,
    ]
    assert reinforce_baseline_advantage(
        np.array([0.5]), np.array([0]), 1, correct_boost=0.1, boost_threshold=0.5
    ).tolist() == [0.1]


def test_truncation_rules_for_cut_rollouts_are_exclusive():
    from rewardsmith import SpecError, load_spec

    with pytest.raises(SpecError, match="grade_cut_text .* no_eos_coef"):
        load_spec(
            {
                "verifier": "exact",
                "shaping": [{"name": "truncation", "max_len": 10, "grade_cut_text": True, "no_eos_coef": 0.1}],
            }
        )
