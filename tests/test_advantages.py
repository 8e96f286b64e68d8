"""Group advantage estimators: hand-computed values, edge cases, verl cross-checks, spec errors."""

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.advantages import AdvantageContext, dynamic_sampling_report, keep_mask, zero_variance_groups
from rewardsmith.advantages.canon import canon_advantage, long_half
from rewardsmith.advantages.group import batch_std_advantage, dr_grpo_advantage, grpo_advantage, rloo_advantage
from rewardsmith.advantages.passk import passk_advantage
from rewardsmith.advantages.reinforce import reinforce_baseline_advantage
from rewardsmith.components import build, entries
from rewardsmith.registry import SpecError

NAMES = ["batch_std", "canon", "dr_grpo", "grpo", "passk", "reinforce_baseline", "rloo", "turn_grpo"]
EPS = 1e-6


def arr(*values):
    return np.array(values, dtype=np.float64)


def ctx(reward, group, length=None, n_groups=None):
    reward = np.asarray(reward, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    length = np.arange(1.0, len(reward) + 1) if length is None else np.asarray(length, dtype=np.float64)
    n = int(group.max()) + 1 if n_groups is None else n_groups
    return AdvantageContext(reward, group, n, length, np.full(len(reward), np.nan))


def test_all_estimators_registered():
    assert [e.name for e in entries("advantage")] == NAMES
    assert all(e.paper and e.description for e in entries("advantage"))


# ----------------------------------------------------------------------------- grpo
def test_grpo_one_correct_of_four():
    # mean 0.25, unbiased std sqrt((0.75² + 3·0.25²)/3) = 0.5
    out = grpo_advantage(arr(1, 0, 0, 0), np.zeros(4, dtype=int), 1)
    np.testing.assert_allclose(out, arr(0.75, -0.25, -0.25, -0.25) / (0.5 + EPS))


def test_grpo_biased_std():
    # biased std sqrt(0.75/4) = sqrt(3)/4
    out = grpo_advantage(arr(1, 0, 0, 0), np.zeros(4, dtype=int), 1, eps=1e-4, std="biased")
    np.testing.assert_allclose(out, arr(0.75, -0.25, -0.25, -0.25) / (np.sqrt(3) / 4 + 1e-4))


def test_grpo_interleaved_groups_of_different_sizes_and_a_singleton():
    # group 0 = rows 0, 2 {1, 0}; group 1 = rows 1, 3, 5 {0, 1, 1}; group 2 = row 4 alone
    out = grpo_advantage(arr(1, 0, 0, 1, 0.5, 1), np.array([0, 1, 0, 1, 2, 1]), 3)
    s2 = np.sqrt(0.5)  # std of {1, 0}
    s3 = np.sqrt(1 / 3)  # std of {0, 1, 1}: deviations -2/3, 1/3, 1/3 -> (4/9 + 2/9) / 2
    expected = arr(
        0.5 / (s2 + EPS),
        -2 / 3 / (s3 + EPS),
        -0.5 / (s2 + EPS),
        1 / 3 / (s3 + EPS),
        0.5 / (1 + EPS),
        1 / 3 / (s3 + EPS),
    )
    np.testing.assert_allclose(out, expected)


def test_grpo_singleton_follows_verl_or_gives_zero():
    np.testing.assert_allclose(grpo_advantage(arr(0.7), np.array([0]), 1), [0.7 / (1 + EPS)])
    assert grpo_advantage(arr(0.7), np.array([0]), 1, singleton="zero").tolist() == [0.0]


@pytest.mark.parametrize("value", [0.0, 1.0, -0.5])
def test_grpo_all_equal_rewards_give_zero(value):
    assert grpo_advantage(np.full(5, value), np.zeros(5, dtype=int), 1).tolist() == [0.0] * 5


# ----------------------------------------------------------------------------- dr_grpo, rloo
def test_dr_grpo_hand_values():
    out = dr_grpo_advantage(arr(1, 0, 0, 1, 1, 0.3), np.array([0, 0, 1, 1, 1, 2]), 3)
    np.testing.assert_allclose(out, arr(0.5, -0.5, -2 / 3, 1 / 3, 1 / 3, 0.3))
    np.testing.assert_allclose(
        dr_grpo_advantage(arr(1, 0, 0.3), np.array([0, 0, 1]), 2, singleton="zero"), arr(0.5, -0.5, 0)
    )


def test_rloo_hand_values():
    # group 0 = rows 0, 2, 3, 5 {1, 0, 0, 0}: A(1) = 1 - 0, A(0) = 0 - 1/3; group 1 = rows 1, 4 {0, 1}: ∓1;
    # group 2 = row 6 alone keeps its reward
    out = rloo_advantage(arr(1, 0, 0, 0, 1, 0, 0.4), np.array([0, 1, 0, 0, 1, 0, 2]), 3)
    np.testing.assert_allclose(out, arr(1, -1, -1 / 3, -1 / 3, 1, -1 / 3, 0.4))


def test_rloo_leave_one_out_definition():
    reward, group = arr(1, 0, 0, 0), np.zeros(4, dtype=int)
    np.testing.assert_allclose(rloo_advantage(reward, group, 1), arr(1, -1 / 3, -1 / 3, -1 / 3))
    assert rloo_advantage(arr(0.4), np.array([0]), 1, singleton="zero").tolist() == [0.0]


# ----------------------------------------------------------------------------- batch_std
def test_batch_std_group_mean_batch_std():
    # batch std of {1, 0, 1, 1} (unbiased) = 0.5; group 1 is all correct -> 0
    out = batch_std_advantage(arr(1, 0, 1, 1), np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(out, arr(0.5, -0.5, 0, 0) / (0.5 + 1e-4))
    out = batch_std_advantage(arr(1, 0, 1, 1), np.array([0, 0, 1, 1]), 2, std="biased")
    np.testing.assert_allclose(out, arr(0.5, -0.5, 0, 0) / (np.sqrt(0.1875) + 1e-4))


def test_batch_std_single_row_and_singletons_give_zero():
    assert batch_std_advantage(arr(0.8), np.array([0]), 1).tolist() == [0.0]
    out = batch_std_advantage(arr(1, 0, 0.5), np.array([0, 1, 2]), 3)
    assert out.tolist() == [0.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- reinforce_baseline
def test_reinforce_baseline_unweighted():
    # centred {0.5, -0.5, 0, 0}: mean 0, var (0.5/4)·4/3 = 1/6
    out = reinforce_baseline_advantage(arr(1, 0, 1, 1), np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(out, arr(0.5, -0.5, 0, 0) / np.sqrt(1 / 6 + 1e-8))


def test_reinforce_baseline_token_weighted():
    # weights 3,1,2,2 (W = 8): mean (1.5 - 0.5)/8 = 1/8, deviations 3/8, -5/8, -1/8, -1/8,
    # var = (3·9 + 25 + 2·2·1)/64/8 · 8/7 = 56/64/7 = 1/8
    out = reinforce_baseline_advantage(arr(1, 0, 1, 1), np.array([0, 0, 1, 1]), 2, length=arr(3, 1, 2, 2))
    np.testing.assert_allclose(out, arr(3, -5, -1, -1) / 8 / np.sqrt(1 / 8 + 1e-8))


def test_reinforce_baseline_zero_length_rows_and_degenerate_batches():
    out = reinforce_baseline_advantage(arr(1, 0, 1, 0), np.array([0, 0, 1, 1]), 2, length=arr(2, 2, 0, 2))
    assert out[2] == 0.0 and np.isfinite(out).all()
    assert reinforce_baseline_advantage(arr(1, 0), np.array([0, 0]), 1, length=arr(0, 0)).tolist() == [0.0, 0.0]
    assert reinforce_baseline_advantage(arr(1, 1, 0, 0), np.array([0, 0, 1, 1]), 2).tolist() == [0.0] * 4
    # a single token in the whole batch: Bessel factor undefined, plain variance (0) -> 0
    assert reinforce_baseline_advantage(arr(1, 0), np.array([0, 1]), 2, length=arr(1, 0)).tolist() == [0.0, 0.0]


def test_reinforce_baseline_singleton():
    # singleton 'reward': centred {1, 0.5, -0.5}; 'zero': {0, 0.5, -0.5}
    reward, group = arr(1, 1, 0), np.array([0, 1, 1])
    out = reinforce_baseline_advantage(reward, group, 2)
    c = arr(1, 0.5, -0.5) - 1 / 3
    np.testing.assert_allclose(out, c / np.sqrt((c @ c) / 2 + 1e-8))
    out = reinforce_baseline_advantage(reward, group, 2, singleton="zero")
    np.testing.assert_allclose(out, arr(0, 0.5, -0.5) / np.sqrt(0.5 / 2 + 1e-8))


def test_reinforce_baseline_rejects_bad_lengths():
    with pytest.raises(ValueError, match="length of rollout 1"):
        reinforce_baseline_advantage(arr(1, 0), np.array([0, 0]), 1, length=arr(2, np.nan))


# ----------------------------------------------------------------------------- passk
def test_passk_best_gets_gap_to_runner_up():
    reward, group = arr(0.2, 1, 0.5, 1, 1, 0), np.array([0, 0, 0, 1, 1, 1])
    assert passk_advantage(reward, group, 2, norm_by_std=False).tolist() == [0, 0.5, 0, 0, 0, 0]
    out = passk_advantage(reward, group, 2)
    std = np.sqrt(((0.2 - 17 / 30) ** 2 + (1 - 17 / 30) ** 2 + (0.5 - 17 / 30) ** 2) / 2)
    np.testing.assert_allclose(out, [0, 0.5 / (std + EPS), 0, 0, 0, 0])


def test_passk_interleaved_binary_groups_and_edge_cases():
    # group 0 = rows 0, 2, 4 {0, 1, 0}; group 1 = rows 1, 3 {1, 1}; group 2 = row 5 alone; group 3 = rows 6, 7 {0, 0}
    reward, group = arr(0, 1, 1, 1, 0, 1, 0, 0), np.array([0, 1, 0, 1, 0, 2, 3, 3])
    out = passk_advantage(reward, group, 4, norm_by_std=False)
    assert out.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(passk_advantage(reward, group, 4)[2], 1 / (np.sqrt(1 / 3) + EPS))


# ----------------------------------------------------------------------------- canon
def test_canon_default_is_cross_half_baseline():
    # lengths 10, 40, 30, 20: short half rows 0, 3 (μ_s = 0.5), long half rows 2, 1 (μ_l = 0.5)
    reward, length = arr(1, 0, 1, 0), arr(10, 40, 30, 20)
    assert long_half(length, np.zeros(4, dtype=int), 1).tolist() == [False, True, True, False]
    np.testing.assert_allclose(
        canon_advantage(reward, np.zeros(4, dtype=int), 1, length), arr(0.5, -0.5, 0.5, -0.5) / 8192
    )


def test_canon_alpha_beta_lambda():
    # α 2, β 0.1, λ 0.5, L_norm 2; μ_s = μ_l = 0.5
    # long  r=1: 0.5(2 - 0.5 + 0.1) + 0.5(1 - 0.5) = 1.05;  r=0: 0.5(0 - 0.5 + 0.1) + 0.5(-0.5) = -0.45
    # short r=1: 0.5(1 - 1 - 0.1) + 0.5(0.5) = 0.2;        r=0: 0.5(0 - 1 - 0.1) + 0.5(-0.5) = -0.8
    out = canon_advantage(
        arr(1, 0, 1, 0), np.zeros(4, dtype=int), 1, arr(10, 40, 30, 20), alpha=2, beta=0.1, lam=0.5, norm_len=2
    )
    np.testing.assert_allclose(out, arr(0.2, -0.45, 1.05, -0.8) / 2)


def test_canon_odd_group_ties_and_singleton():
    # n = 3, lengths 5, 1, 3: short = row 1 (μ_s = 1), long = rows 2, 0 (μ_l = 0.5)
    out = canon_advantage(arr(0, 1, 1), np.zeros(3, dtype=int), 1, arr(5, 1, 3), norm_len=1)
    np.testing.assert_allclose(out, arr(-1, 0.5, 0))
    # equal lengths: stable sort keeps row order, short = rows 0, 1
    out = canon_advantage(arr(1, 0, 0, 1), np.zeros(4, dtype=int), 1, arr(2, 2, 2, 2), norm_len=1)
    np.testing.assert_allclose(out, arr(0.5, -0.5, -0.5, 0.5))
    # a group of one: μ_s = μ_l = 0, the rollout is "long": λ(αr + β) + (1-λ)r
    out = canon_advantage(arr(1), np.array([0]), 1, arr(7), alpha=2, beta=0.1, lam=0.5, norm_len=1)
    np.testing.assert_allclose(out, [0.5 * 2.1 + 0.5])


def _canon_reference(reward, group, length, alpha, beta, lam, norm_len):
    """Loop-by-group reference written from the CANON formulas (the docstring of advantages/canon.py)."""
    out = np.zeros(len(reward))
    for g in np.unique(group):
        rows = sorted(np.flatnonzero(group == g), key=lambda i: length[i])  # sorted() is stable
        half = len(rows) // 2
        short, long_ = rows[:half], rows[half:]
        mu_s = np.mean(reward[short]) if len(rows) > 1 else 0.0
        mu_l = np.mean(reward[long_]) if len(rows) > 1 else 0.0
        for i in long_:
            out[i] = (lam * (alpha * reward[i] - mu_s + beta) + (1 - lam) * (reward[i] - mu_l)) / norm_len
        for i in short:
            out[i] = (lam * (reward[i] - alpha * mu_l - beta) + (1 - lam) * (reward[i] - mu_s)) / norm_len
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canon_matches_loop_reference_on_random_interleaved_groups(seed):
    rng = np.random.default_rng(seed)
    reward, group, length, n_groups = random_batch(rng)
    alpha, beta, lam = rng.uniform(0.5, 2), rng.uniform(-0.2, 0.2), rng.uniform(0, 1)
    out = canon_advantage(reward, group, n_groups, length, alpha, beta, lam, 100.0)
    np.testing.assert_allclose(out, _canon_reference(reward, group, length, alpha, beta, lam, 100.0), atol=1e-12)


# ----------------------------------------------------------------------------- all estimators
def random_batch(rng, min_size=1, max_size=6, n_groups=12, max_len=20):
    sizes = rng.integers(min_size, max_size + 1, n_groups)
    group = rng.permutation(np.repeat(np.arange(n_groups), sizes))  # rows of a group scattered
    binary = rng.integers(0, 2, len(group)).astype(np.float64)
    graded = np.round(rng.uniform(-1, 1, len(group)), 1)  # coarse values: ties happen
    reward = np.where(rng.random(len(group)) < 0.5, binary, graded)
    length = rng.integers(1, max_len + 1, len(group)).astype(np.float64)
    return reward, group, length, n_groups


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_finite_and_follow_rows_when_shuffled(name):
    rng = np.random.default_rng(7)
    reward, group, length, n_groups = random_batch(rng, min_size=2)
    length = rng.permutation(len(reward)).astype(np.float64) + 1  # distinct lengths: canon order is unambiguous
    estimator = build("advantage", name, field="advantage")
    out = estimator.compute(ctx(reward, group, length, n_groups))
    assert out.dtype == np.float64 and out.shape == reward.shape and np.isfinite(out).all()
    perm = rng.permutation(len(reward))
    shuffled = estimator.compute(ctx(reward[perm], group[perm], length[perm], n_groups))
    np.testing.assert_allclose(shuffled, out[perm], atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_all_correct_and_all_wrong_groups_give_zero_for_group_baselines(name):
    reward, group = arr(1, 0, 1, 0, 1, 0), np.array([0, 1, 0, 1, 0, 1])  # group 0 all correct, group 1 all wrong
    out = build("advantage", name, field="advantage").compute(ctx(reward, group))
    assert out.tolist() == [0.0] * 6


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_and_nan_reward(name):
    estimator = build("advantage", name, field="advantage")
    empty = AdvantageContext(np.zeros(0), np.zeros(0, dtype=np.int64), 0, np.zeros(0), np.zeros(0))
    assert estimator.compute(empty).shape == (0,)
    with pytest.raises(ValueError, match=f"{name}: reward of rollout 1 is nan"):
        estimator.compute(ctx(arr(1, np.nan), np.array([0, 0])))


@pytest.mark.parametrize("name", NAMES)
def test_input_reward_not_modified(name):
    reward = arr(1, 0, 0.5, 0.5)
    build("advantage", name, field="advantage").compute(ctx(reward, np.array([0, 0, 1, 1])))
    assert reward.tolist() == [1, 0, 0.5, 0.5]


# ----------------------------------------------------------------------------- verl cross-checks
def verl_advantage(name, reward, group, length, **kwargs):
    """verl's estimator on one outcome reward per response (at its last valid token)."""
    torch = pytest.importorskip("torch")
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
    width = int(length.max())
    lengths = torch.as_tensor(length, dtype=torch.int64)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).to(torch.float64)
    token_rewards = torch.zeros(len(reward), width, dtype=torch.float64)
    token_rewards[torch.arange(len(reward)), lengths - 1] = torch.as_tensor(reward)
    fn = core_algos.get_adv_estimator_fn(name)
    advantages, _ = fn(token_level_rewards=token_rewards, response_mask=mask, index=group, **kwargs)
    return advantages.numpy(), mask.numpy().astype(bool)


def assert_matches_verl(ours, verl_tokens, mask):
    per_token = np.broadcast_to(ours[:, None], verl_tokens.shape)
    np.testing.assert_allclose(verl_tokens[mask], per_token[mask], rtol=1e-6, atol=1e-9)
    assert (verl_tokens[~mask] == 0).all()


VERL_CASES = [
    ("grpo", "grpo", {"norm_adv_by_std_in_grpo": True}, 1),
    ("dr_grpo", "grpo", {"norm_adv_by_std_in_grpo": False}, 1),
    ("rloo", "rloo", {}, 1),
    ("reinforce_baseline", "reinforce_plus_plus_baseline", {}, 1),
    ("passk", "grpo_passk", {"config": {"norm_adv_by_std_in_grpo": True}}, 2),  # verl raises on groups of one
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ours, theirs, kwargs, min_size", VERL_CASES)
def test_matches_verl(ours, theirs, kwargs, min_size, seed):
    rng = np.random.default_rng(seed)
    reward, group, length, n_groups = random_batch(rng, min_size=min_size)
    out = build("advantage", ours, field="advantage").compute(ctx(reward, group, length, n_groups))
    verl_tokens, mask = verl_advantage(theirs, reward, group, length, **kwargs)
    assert_matches_verl(out, verl_tokens, mask)


def test_passk_without_std_matches_verl():
    rng = np.random.default_rng(3)
    reward, group, length, n_groups = random_batch(rng, min_size=2)
    out = build("advantage", {"name": "passk", "norm_by_std": False}, field="advantage").compute(
        ctx(reward, group, length, n_groups)
    )
    verl_tokens, mask = verl_advantage("grpo_passk", reward, group, length, config={"norm_adv_by_std_in_grpo": False})
    assert_matches_verl(out, verl_tokens, mask)
    assert np.count_nonzero(out) <= n_groups


def test_reinforce_baseline_zero_length_row_matches_verl():
    reward, group, length = arr(1, 0, 0.5, 0, 1), np.array([0, 1, 0, 1, 1]), arr(4, 3, 2, 5, 3)
    ours = reinforce_baseline_advantage(reward, group, 2, length)
    verl_tokens, mask = verl_advantage("reinforce_plus_plus_baseline", reward, group, length)
    assert_matches_verl(ours, verl_tokens, mask)


# ----------------------------------------------------------------------------- dynamic sampling
def test_zero_variance_groups_and_keep_mask():
    # group 0 all correct, 1 mixed, 2 all wrong, 3 alone, 4 {0.5, NaN}: one known value -> kept
    reward = arr(1, 0, 1, 0, 1, 0, 0.3, 0.5, np.nan)
    group = np.array([0, 1, 0, 2, 1, 2, 3, 4, 4])
    assert zero_variance_groups(reward, group, 5).tolist() == [True, False, True, False, False]
    assert keep_mask(reward, group, 5).tolist() == [False, True, False, False, True, False, True, True, True]
    assert dynamic_sampling_report(reward, group, 5) == {
        "groups": 5,
        "zero_variance_groups": 2,
        "zero_variance_share": 0.4,
        "single_rollout_groups": 2,  # group 3, and group 4 with one known value
        "dropped_rollouts": 4,
        "collapsed_to": {0.0: 1, 1.0: 1},
    }


def test_zero_variance_compares_values_within_1e9_or_atol():
    reward, group = arr(0.1, 0.1, 0.1, 0.5, 0.5 + 1e-12, 2.0, 2.0 + 1e-8), np.array([0, 0, 0, 1, 1, 2, 2])
    assert zero_variance_groups(reward, group, 3).tolist() == [True, True, False]  # max − min <= 1e-9, absolute
    assert zero_variance_groups(reward, group, 3, atol=0.0).tolist() == [True, False, False]
    assert dynamic_sampling_report(arr(), np.zeros(0, dtype=int), 0)["zero_variance_share"] == 0.0


# ----------------------------------------------------------------------------- spec
RECORDS = [
    {"prompt_id": "a", "completion": "Answer: 4", "answer": "4"},
    {"prompt_id": "b", "completion": "Answer: 7", "answer": "9"},
    {"prompt_id": "a", "completion": "Answer: 5", "answer": "4"},
    {"prompt_id": "c", "completion": "Answer: 1", "answer": "1"},
    {"prompt_id": "b", "completion": "Answer: 9", "answer": "9"},
    {"prompt_id": "a", "completion": "Answer: 4", "answer": "4"},
]


def test_end_to_end_through_load_spec():
    scores = load_spec({"verifier": "exact", "length_unit": "words", "advantage": {"name": "grpo"}}).score(RECORDS)
    # a: {1, 0, 1} -> mean 2/3, std sqrt(1/3); b: {0, 1} -> ∓ 1/sqrt(2); c: alone -> 1/(1 + eps)
    s3, s2 = np.sqrt(1 / 3), np.sqrt(0.5)
    expected = arr(
        1 / 3 / (s3 + EPS), -0.5 / (s2 + EPS), -2 / 3 / (s3 + EPS), 1 / (1 + EPS), 0.5 / (s2 + EPS), 1 / 3 / (s3 + EPS)
    )
    np.testing.assert_allclose(scores.advantages, expected)
    assert scores.to_records(RECORDS)[1]["advantage"] == pytest.approx(-0.5 / (s2 + EPS))


@pytest.mark.parametrize(
    "advantage, message",
    [
        ({"name": "grpo", "eps": -1}, r"advantage\(grpo\)\.eps"),
        ({"name": "grpo", "std": "sample"}, r"advantage\(grpo\)\.std"),
        ({"name": "grpo", "norm": True}, r"advantage\(grpo\)\.norm: unknown option; allowed: eps, std, singleton"),
        ({"name": "rloo", "singleton": "drop"}, r"advantage\(rloo\)\.singleton"),
        ({"name": "canon", "lam": 1.5}, r"advantage\(canon\)\.lam"),
        ({"name": "canon", "norm_len": 0}, r"advantage\(canon\)\.norm_len"),
        ({"name": "reinforce_baseline", "token_weighted": "maybe"}, r"advantage\(reinforce_baseline\)\.token_weighted"),
        ({"name": "passk", "eps": 0}, r"advantage\(passk\)\.eps"),
        ({"name": "batch_std", "std": 1}, r"advantage\(batch_std\)\.std"),
    ],
)
def test_bad_options_raise_spec_error_naming_the_field(advantage, message):
    with pytest.raises(SpecError, match=message):
        load_spec({"verifier": "exact", "advantage": advantage})


def test_group_aware_tags_match_behaviour():
    """An estimator whose advantage for a rollout moves when the rest of its group changes carries ``group_aware``."""
    reward, length, correct = arr(1, 0, 0.5, 1, 0, 0), arr(10, 30, 20, 40, 15, 25), arr(1, 0, 0, 1, 0, 0)
    together, alone = np.array([0, 0, 0, 1, 1, 1]), np.arange(6)
    for entry in entries("advantage"):
        est = build("advantage", entry.name, field="advantage")
        moved = not np.allclose(
            est.compute(AdvantageContext(reward, together, 2, length, correct)),
            est.compute(AdvantageContext(reward, alone, 6, length, correct)),
        )
        assert moved == entry.cls.group_aware, entry.name
