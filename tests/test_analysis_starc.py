import numpy as np
import pytest

from rewardsmith.analysis.starc import (
    epic_canonical,
    potential_shaped,
    standardise,
    starc_distance,
    uniform_policy_values,
    val_canonical,
)

S, A = 5, 3


@pytest.fixture
def mdp():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(S, A, S))
    tau = rng.random((S, A, S))
    tau /= tau.sum(axis=2, keepdims=True)
    return R, tau, 0.9


@pytest.mark.parametrize("canonical", ["epic", "val"])
def test_potential_shaping_and_positive_scaling_give_zero(mdp, canonical):
    R, tau, gamma = mdp
    phi = np.random.default_rng(1).normal(size=S) * 10
    shaped = potential_shaped(R, phi, gamma)
    assert np.abs(shaped - R).max() > 1.0  # the shaping is not negligible
    assert starc_distance(R, shaped, gamma, tau, canonical) == pytest.approx(0.0, abs=1e-9)
    assert starc_distance(R, 3.7 * R, gamma, tau, canonical) == pytest.approx(0.0, abs=1e-9)
    assert starc_distance(R, 0.01 * shaped, gamma, tau, canonical) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("canonical", ["epic", "val"])
def test_negation_is_the_maximum_distance(mdp, canonical):
    R, tau, gamma = mdp
    assert starc_distance(R, -R, gamma, tau, canonical) == pytest.approx(2.0)
    assert starc_distance(R, -R, gamma, tau, canonical, halve=True) == pytest.approx(1.0)
    other = np.random.default_rng(5).normal(size=R.shape)
    d = starc_distance(R, other, gamma, tau, canonical)
    assert 0.0 < d < 2.0
    assert starc_distance(other, R, gamma, tau, canonical) == pytest.approx(d)  # symmetric


def test_zero_reward_stays_zero():
    gamma = 0.5
    tau = np.full((2, 1, 2), 0.5)
    zero = np.zeros((2, 1, 2))
    shaped_zero = potential_shaped(zero, np.array([1.0, -2.0]), gamma)  # canonicalises to 0
    R = np.arange(4.0).reshape(2, 1, 2)
    assert np.abs(epic_canonical(shaped_zero, gamma)).max() < 1e-12
    assert starc_distance(zero, shaped_zero, gamma) == 0.0
    assert starc_distance(zero, R, gamma) == pytest.approx(1.0)  # unit vector vs 0
    assert not standardise(np.zeros(3)).any()
    assert starc_distance(zero, shaped_zero, gamma, tau, "val") == 0.0


def test_epic_canonical_hand_example():
    # one state, one action: C(R) = R + γR − R − γR = 0 for any R
    assert epic_canonical(np.array([[[3.0]]]), 0.9).item() == pytest.approx(0.0)
    # two states, one action, R(s, a, s') = 1 if s' == 1: Φ = [0.5, 0.5], E[R] = 0.5
    R = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    C = epic_canonical(R, 0.5)
    np.testing.assert_allclose(C[:, 0, :], [[0.0 + 0.25 - 0.5 - 0.25, 1.0 + 0.25 - 0.5 - 0.25]] * 2)


def test_uniform_policy_values_hand_example():
    # two absorbing states with rewards 1 and 0 per step: V = r/(1-γ)
    tau = np.zeros((2, 2, 2))
    tau[0, :, 0] = tau[1, :, 1] = 1.0
    R = np.zeros((2, 2, 2))
    R[0, :, 0] = 1.0
    assert uniform_policy_values(R, tau, 0.5).tolist() == pytest.approx([2.0, 0.0])
    assert np.abs(val_canonical(R, tau, 0.5)).max() == pytest.approx(0.0)  # R = (1-γ)·V is fully levelled


def test_bad_inputs_are_errors(mdp):
    R, tau, gamma = mdp
    with pytest.raises(ValueError, match="transitions"):
        starc_distance(R, R, gamma, None, "val")
    with pytest.raises(ValueError, match="gamma"):
        starc_distance(R, R, 1.0, tau, "val")
    with pytest.raises(ValueError, match="sum to 1"):
        starc_distance(R, R, gamma, tau * 2, "val")
    with pytest.raises(ValueError, match="shape"):
        starc_distance(R, R[:, :2], gamma)
    with pytest.raises(ValueError, match="allowed"):
        starc_distance(R, R, gamma, tau, "nope")


def test_worked_example_in_the_docs_matches_the_script(capsys):
    """docs/analysis.md's STARC tables are the output of examples/starc_length_penalties.py."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("starc_example", root / "examples" / "starc_length_penalties.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    doc = (root / "docs" / "analysis.md").read_text()
    table_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table_lines) > 20
    missing = [line for line in table_lines if line not in doc]
    assert not missing, missing
