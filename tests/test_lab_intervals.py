"""The study's interval arithmetic, against hand computation and published values."""

import math

import pytest

from rewardsmith.lab.intervals import (
    ONE_SEED,
    ZERO_VARIANCE,
    Estimate,
    mean_interval,
    newcombe_difference,
    paired_difference,
    t_quantile,
    wilson,
)


def test_t_quantiles_match_the_table():
    # two-sided 95%: t(0.975, df) from any t-table
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(4) == pytest.approx(2.776, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_mean_interval_by_hand():
    # [1, 2, 3]: mean 2, s = 1, se = 1/√3, half = 4.3027/√3 = 2.4841
    e = mean_interval([1.0, 2.0, 3.0])
    assert e.value == 2.0 and e.n == 3 and e.note == ""
    assert e.low == pytest.approx(2 - 2.48414, abs=1e-4) and e.high == pytest.approx(2 + 2.48414, abs=1e-4)
    assert e.sign() == 0
    # [0.5, 0.7]: mean 0.6, s = 0.1414, se = 0.1, half = 12.706 · 0.1
    e = mean_interval([0.5, 0.7])
    assert e.low == pytest.approx(0.6 - 1.2706, abs=1e-3) and e.high == pytest.approx(0.6 + 1.2706, abs=1e-3)


def test_mean_interval_edge_cases():
    one = mean_interval([0.4])
    assert one.value == 0.4 and not one.has_interval and one.note == ONE_SEED and one.sign() is None
    flat = mean_interval([0.3, 0.3, 0.3])
    assert (flat.low, flat.high) == (0.3, 0.3) and flat.note == ZERO_VARIANCE and flat.sign() == 1
    zero = mean_interval([0.0, 0.0, 0.0])
    assert zero.sign() == 0  # [0, 0] contains 0: no claim
    assert mean_interval([]).value is None


def test_paired_difference_pairs_by_seed():
    # differences per seed: −0.10, −0.20, −0.30 → mean −0.2, s 0.1, half 4.3027·0.1/√3 = 0.24841
    spec = {0: 0.8, 1: 0.7, 2: 0.5, 3: 0.9}
    base = {0: 0.9, 1: 0.9, 2: 0.8}  # seed 3 has no baseline: left out
    e = paired_difference(spec, base)
    assert e.n == 3 and e.value == pytest.approx(-0.2)
    assert e.high == pytest.approx(-0.2 + 0.24841, abs=1e-4) and e.sign() == 0
    # a constant drop of 0.1 on every seed: zero variance, the interval [−0.1, −0.1] excludes 0
    e = paired_difference({0: 0.8, 1: 0.7}, {0: 0.9, 1: 0.8})
    assert e.note == ZERO_VARIANCE and e.value == pytest.approx(-0.1) and e.sign() == -1
    # accuracy drops of 0.2, 0.5 and 0.9: mean −0.533, s 0.3512, half 4.3027·0.3512/√3 = 0.8725, so the
    # low end −1.41 lies below any difference of two shares; with bounds it is cut to −1 and says so
    drops = {0: 0.8, 1: 0.5, 2: 0.1}
    e = paired_difference(drops, {0: 1.0, 1: 1.0, 2: 1.0})
    assert e.low == pytest.approx(-0.5333 - 0.8725, abs=1e-3)
    e = paired_difference(drops, {0: 1.0, 1: 1.0, 2: 1.0}, bounds=(-1.0, 1.0))
    assert e.low == -1.0 and e.high == pytest.approx(-0.5333 + 0.8725, abs=1e-3) and "cut to [-1, 1]" in e.note


def test_wilson_by_hand_and_at_the_bounds():
    # 8/10: z = 1.95996, z²/n = 0.38415; centre 0.99207/1.38415 = 0.71674; half 0.31362/1.38415 = 0.22658
    e = wilson(8, 10)
    assert e.low == pytest.approx(0.49016, abs=1e-4) and e.high == pytest.approx(0.94332, abs=1e-4)
    # 0/10: [0, z²/(n + z²)] = [0, 3.84146/13.84146]
    e = wilson(0, 10)
    assert e.value == 0.0 and e.low == 0.0 and e.high == pytest.approx(0.27753, abs=1e-4)
    e = wilson(10, 10)
    assert e.high == 1.0 and e.low == pytest.approx(1 - 0.27753, abs=1e-4)
    assert wilson(0, 0).value is None and not wilson(0, 0).has_interval
    with pytest.raises(ValueError):
        wilson(11, 10)
    for s in range(0, 21):
        e = wilson(s, 20)
        assert 0.0 <= e.low <= e.value <= e.high <= 1.0


def test_newcombe_difference_matches_the_paper():
    # Newcombe (1998), Table II example (56/70 vs 48/80), method 10: 0.0524 to 0.3339
    e = newcombe_difference(56, 70, 48, 80)
    assert e.value == pytest.approx(0.2)
    assert e.low == pytest.approx(0.0524, abs=1e-4) and e.high == pytest.approx(0.3339, abs=1e-4)
    assert e.sign() == 1
    assert newcombe_difference(5, 10, 5, 10).sign() == 0
    assert newcombe_difference(1, 0, 5, 10).value is None


def test_estimate_round_trips_through_json():
    e = mean_interval([0.1, 0.2, 0.4])
    assert Estimate.from_dict(e.to_dict()) == e
    assert all(math.isfinite(v) for v in (e.value, e.low, e.high))


def test_mean_interval_of_a_share_stays_in_its_range():
    # the study's rm_biased_raw accuracies (0.243, 0.498, 0.640): t-interval [-0.039, 0.960] before the cut
    e = mean_interval([0.243, 0.498, 0.640], bounds=(0.0, 1.0))
    assert e.low == 0.0 and e.high == pytest.approx(0.9603, abs=1e-3) and e.note == "cut to [0, 1]"
    assert mean_interval([0.4, 0.5, 0.6], bounds=(0.0, 1.0)).note == ""  # inside: untouched
