"""STARC distance between reward functions on a tabular MDP (Skalse et al., 2024, "STARC: A
General Framework For Quantifying Differences Between Reward Functions").

A reward is an array ``R[s, a, s']``; transitions ``tau[s, a, s']`` (rows sum to 1); discount γ.
Distance = ‖s(R1) − s(R2)‖₂ with s(R) = C(R)/‖C(R)‖₂ (0 stays 0) and C one of:

- ``epic`` (Gleave et al., 2021, EPIC's canonicalisation; needs no transitions):
  C(R)(s,a,s') = R(s,a,s') + γΦ(s') − Φ(s) − γ·E[R], with Φ(s) = E_{A,S'}[R(s,A,S')] and
  E[R] = E_{S,A,S'}[R(S,A,S')] under uniform distributions over actions and states.
- ``val`` (STARC's value-adjusted levelling, π uniform):
  C(R)(s,a) = E_{S'~τ(s,a)}[R(s,a,S') + γV^π(S') − V^π(s)], needs γ < 1.

Both are invariant to potential shaping (R + γΦ(s') − Φ(s)); normalising makes the distance
invariant to positive scaling; d ∈ [0, 2] with d(R, −R) = 2 for a non-degenerate R. STARC's
paper halves it to [0, 1] (``halve=True``).

    >>> import numpy as np
    >>> R = np.random.default_rng(0).normal(size=(3, 2, 3))
    >>> round(starc_distance(R, 2.5 * R, gamma=0.9), 6), round(starc_distance(R, -R, gamma=0.9), 6)
    (0.0, 2.0)
"""

from __future__ import annotations

import numpy as np

CANONICALISATIONS = ("epic", "val")


def _check_reward(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] != R.shape[2]:
        raise ValueError(f"a reward must have shape (states, actions, states), got {R.shape}")
    if not np.isfinite(R).all():
        raise ValueError("the reward has non-finite entries")
    return R


def _check_transitions(tau: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if tau is None:
        raise ValueError("value-adjusted levelling needs the transitions tau[s, a, s']")
    tau = np.asarray(tau, dtype=np.float64)
    if tau.shape != shape:
        raise ValueError(f"transitions have shape {tau.shape}, the reward {shape}")
    if (tau < 0).any() or not np.allclose(tau.sum(axis=2), 1.0, atol=1e-9):
        raise ValueError("transitions must be non-negative and sum to 1 over s' for every (s, a)")
    return tau


def epic_canonical(R: np.ndarray, gamma: float) -> np.ndarray:
    """EPIC canonicalisation (Gleave et al., 2021, "Quantifying Differences in Reward Functions")
    under uniform state/action distributions: R + γΦ(s') − Φ(s) − γ·E[R], Φ(s) = mean over a, s'
    of R(s, a, s')."""
    R = _check_reward(R)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    phi = R.mean(axis=(1, 2))
    return R + gamma * phi[None, None, :] - phi[:, None, None] - gamma * R.mean()


def uniform_policy_values(R: np.ndarray, tau: np.ndarray, gamma: float) -> np.ndarray:
    """V^π for the uniformly random policy: V = (I − γP_π)⁻¹ r_π."""
    R = _check_reward(R)
    tau = _check_transitions(tau, R.shape)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"value-adjusted levelling needs gamma in [0, 1), got {gamma}")
    r_pi = (tau * R).sum(axis=2).mean(axis=1)
    p_pi = tau.mean(axis=1)
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * p_pi, r_pi)


def val_canonical(R: np.ndarray, tau: np.ndarray, gamma: float) -> np.ndarray:
    """Value-adjusted levelling (STARC, π uniform): E_{S'~τ(s,a)}[R + γV^π(S') − V^π(s)], shape (S, A)."""
    R = _check_reward(R)
    v = uniform_policy_values(R, tau, gamma)
    tau = np.asarray(tau, dtype=np.float64)
    return (tau * (R + gamma * v[None, None, :])).sum(axis=2) - v[:, None]


def canonicalise(R: np.ndarray, gamma: float, tau: np.ndarray | None = None, canonical: str = "epic") -> np.ndarray:
    """C(R) by ``canonical``: ``epic`` (shape S×A×S) or ``val`` (shape S×A, needs ``tau``)."""
    if canonical == "epic":
        return epic_canonical(R, gamma)
    if canonical == "val":
        return val_canonical(R, _check_transitions(tau, np.shape(R)), gamma)
    raise ValueError(f"canonical: {canonical!r} is not allowed; allowed: {', '.join(CANONICALISATIONS)}")


def standardise(c: np.ndarray, scale: float = 1.0, rtol: float = 1e-10) -> np.ndarray:
    """c/‖c‖₂; a canonical reward whose norm is below ``rtol``·max(1, ``scale``) is zero and stays zero."""
    norm = float(np.linalg.norm(c))
    if norm <= rtol * max(1.0, scale):
        return np.zeros_like(c)
    return c / norm


def starc_distance(
    R1: np.ndarray,
    R2: np.ndarray,
    gamma: float,
    tau: np.ndarray | None = None,
    canonical: str = "epic",
    halve: bool = False,
) -> float:
    """‖s(R1) − s(R2)‖₂ in [0, 2] (in [0, 1] with ``halve``). Canonicalisation ``epic`` or ``val``."""
    R1, R2 = _check_reward(R1), _check_reward(R2)
    if R1.shape != R2.shape:
        raise ValueError(f"rewards have different shapes {R1.shape} and {R2.shape}")
    s1 = standardise(canonicalise(R1, gamma, tau, canonical), float(np.linalg.norm(R1)))
    s2 = standardise(canonicalise(R2, gamma, tau, canonical), float(np.linalg.norm(R2)))
    d = float(np.linalg.norm(s1 - s2))
    return d / 2.0 if halve else d


def potential_shaped(R: np.ndarray, potential: np.ndarray, gamma: float) -> np.ndarray:
    """R + γΦ(s') − Φ(s) (Ng et al., 1999): the same optimal policies for every transition model."""
    R = _check_reward(R)
    phi = np.asarray(potential, dtype=np.float64)
    return R + gamma * phi[None, None, :] - phi[:, None, None]
