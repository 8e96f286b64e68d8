"""Length penalties relative to the group or to a target: ``kimi``, ``efficient_reasoning``,
``l1_exact``, ``l1_max``.

All four follow the unified form of the LASER paper (§4), ``R = C(y) + λ(y)·S(y)``. Lengths are
in the spec's ``length_unit``; group statistics are taken per group (the rollouts sharing a
``prompt_id``), never over the whole batch. A rollout whose correctness is unknown
(``correct`` NaN) is neither correct nor wrong: it gets no length term.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "kimi"}]})
    >>> recs = [{"prompt_id": "q", "completion": c, "answer": "4"}
    ...         for c in ("Answer: 4", "so so so. Answer: 4", "Answer: 5")]
    >>> s = pipe.score(recs)
    >>> s.total.tolist(), s.components["kimi"].tolist()
    ([1.5, 0.5, 0.0], [0.5, -0.5, 0.0])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from ..batch import group_reduce
from ..registry import Options, register
from .base import Shaper, ShapingContext


# --------------------------------------------------------------------------- Kimi k1.5
def kimi_length_reward(length: np.ndarray, group: np.ndarray, n_groups: int, correct: np.ndarray, wrong: np.ndarray, coef: float) -> np.ndarray:
    """Kimi k1.5 length reward (Kimi Team 2025, §2.3.3 "Length Penalty").

    Per group, λ = 0.5 − (L − Lmin)/(Lmax − Lmin) with Lmin/Lmax over *all* the group's
    rollouts; correct rollouts get ``coef·λ``, wrong ones ``coef·min(0, λ)``, others 0. A group
    whose lengths are all equal (a single rollout included) gets 0.

    >>> import numpy as np
    >>> kimi_length_reward(np.array([10., 20., 30.]), np.zeros(3, int), 1, np.array([1, 1, 0], bool), np.array([0, 0, 1], bool), 1.0).tolist()
    [0.5, 0.0, -0.5]
    """
    lo = group_reduce(length, group, n_groups, "min")[group]
    hi = group_reduce(length, group, n_groups, "max")[group]
    span = hi - lo
    frac = np.divide(length - lo, span, out=np.full(len(length), 0.5), where=span > 0)
    lam = 0.5 - frac
    term = np.where(correct, coef * lam, np.where(wrong, coef * np.minimum(0.0, lam), 0.0))
    return term + 0.0  # no -0.0 in the output


class KimiOptions(Options):
    coef: float = Field(default=1.0, ge=0.0, description="weight of the length reward (LASER's reimplementation uses 0.4)")


@register("shaper", "kimi", "Kimi k1.5 group length reward: correct +c·λ, wrong c·min(0, λ), λ = 0.5 − (L−Lmin)/(Lmax−Lmin).", "Kimi k1.5 (Kimi Team, 2025)")
class Kimi(Shaper):
    Options = KimiOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        return kimi_length_reward(ctx.length, ctx.group, ctx.n_groups, ctx.is_correct, ctx.is_wrong, self.options.coef)


# --------------------------------------------------------------------------- Arora & Zanette
def efficient_reasoning_penalty(length: np.ndarray, group: np.ndarray, n_groups: int, correct: np.ndarray, alpha: float) -> np.ndarray:
    """Length penalty of "Training Language Models to Reason Efficiently" (Arora & Zanette 2025,
    §3, the reward 1[correct]·(1 − α·σ((L − μ)/σ_L))), written as the added term.

    Correct rollouts get ``−α·sigmoid((L − μ)/σ_L)`` with μ and σ_L the mean and population
    standard deviation [unverified: population vs sample std] of the lengths of the group's
    correct rollouts; other rollouts get 0. When σ_L = 0 (one correct rollout, or all of equal
    length) the z-score is 0 and every correct rollout gets −α/2: nothing to rank, so the same
    mid-point penalty for all (LASER's reimplementation instead uses μ = 0, σ = 1 for a single
    correct rollout, which gives it ≈ −α). With base ``correct: 1`` the total equals the paper's
    multiplicative form.

    >>> import numpy as np
    >>> efficient_reasoning_penalty(np.array([10., 30., 99.]), np.zeros(3, int), 1, np.array([1, 1, 0], bool), 0.2).round(4).tolist()
    [-0.0538, -0.1462, 0.0]
    """
    mu = group_reduce(length, group, n_groups, "mean", where=correct)[group]
    dev = np.where(correct, length - np.nan_to_num(mu), 0.0)
    var = group_reduce(dev * dev, group, n_groups, "mean", where=correct)[group]
    sd = np.sqrt(np.nan_to_num(var))
    z = np.divide(dev, sd, out=np.zeros(len(length)), where=sd > 0)
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    return np.where(correct, -alpha * sigmoid, 0.0) + 0.0


class EfficientReasoningOptions(Options):
    alpha: float = Field(default=0.2, ge=0.0, description="strength of the penalty (the paper sweeps 0.05-0.4)")


@register("shaper", "efficient_reasoning", "Correct rollouts get −α·sigmoid(z) of their length z-score among the group's correct rollouts.", "Training Language Models to Reason Efficiently (Arora & Zanette, 2025)")
class EfficientReasoning(Shaper):
    Options = EfficientReasoningOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        return efficient_reasoning_penalty(ctx.length, ctx.group, ctx.n_groups, ctx.is_correct, self.options.alpha)


# --------------------------------------------------------------------------- L1 (LCPO)
def target_lengths(metas: Sequence[dict[str, Any]], prompt_ids: Sequence[str], default: float | None, where: str) -> np.ndarray:
    """Per-row target length: ``meta.target_length`` where a record has one, else ``default``.

    Raises ``ValueError`` naming the first record that has neither (no silent fallback).
    """
    n = len(metas)
    if not any("target_length" in m for m in metas):
        if default is None and n:
            raise ValueError(f"{where}: record 0 (prompt_id {prompt_ids[0]!r}) has no meta.target_length and the shaper has no 'target'")
        return np.full(n, np.nan if default is None else float(default))
    out = np.empty(n)
    for i, m in enumerate(metas):
        value = m.get("target_length", default)
        try:
            out[i] = math.nan if value is None else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: record {i} (prompt_id {prompt_ids[i]!r}): meta.target_length {value!r} is not a number") from None
        if not math.isfinite(out[i]) or out[i] < 0:
            what = "has no meta.target_length and the shaper has no 'target'" if value is None else f"meta.target_length {value!r} is not a length >= 0"
            raise ValueError(f"{where}: record {i} (prompt_id {prompt_ids[i]!r}) {what}")
    return out


def l1_exact_penalty(length: np.ndarray, target: np.ndarray, alpha: float) -> np.ndarray:
    """L1-Exact (Aggarwal & Welleck 2025, LCPO, Eq. 1) [unverified]: ``−α·|L − L_T|`` for every rollout.

    >>> import numpy as np
    >>> l1_exact_penalty(np.array([90., 100., 120.]), np.array([100., 100., 100.]), 0.01).tolist()
    [-0.1, 0.0, -0.2]
    """
    return -alpha * np.abs(length - target) + 0.0


def l1_max_factor(length: np.ndarray, target: np.ndarray, alpha: float, delta: float) -> np.ndarray:
    """L1-Max (Aggarwal & Welleck 2025, LCPO-Max, Eq. 2) [unverified]: ``clip(α(L_T − L) + δ, 0, 1)``,
    the factor a correct rollout's reward is multiplied by.

    >>> import numpy as np
    >>> l1_max_factor(np.array([0., 1000., 3000.]), np.array([1000., 1000., 1000.]), 3e-4, 0.5).round(4).tolist()
    [0.8, 0.5, 0.0]
    """
    return np.clip(alpha * (target - length) + delta, 0.0, 1.0)


class L1ExactOptions(Options):
    target: float | None = Field(default=None, ge=0.0, description="target length L_T; a record's meta.target_length overrides it")
    alpha: float = Field(default=3e-4, ge=0.0, description="penalty per unit of length off target [unverified]")


class L1MaxOptions(L1ExactOptions):
    delta: float = Field(default=0.5, description="offset δ inside the clip [unverified]")


@register("shaper", "l1_exact", "L1-Exact: −α·|L − L_T| with L_T from the option or the record's meta.target_length [unverified].", "L1: Controlling How Long a Reasoning Model Thinks (Aggarwal & Welleck, 2025)")
class L1Exact(Shaper):
    Options = L1ExactOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        target = target_lengths(ctx.batch.metas, ctx.batch.prompt_ids, self.options.target, "l1_exact")
        return l1_exact_penalty(ctx.length, target, self.options.alpha)


@register("shaper", "l1_max", "L1-Max: a correct rollout's base reward R becomes R·clip(α(L_T − L) + δ, 0, 1) [unverified].", "L1: Controlling How Long a Reasoning Model Thinks (Aggarwal & Welleck, 2025)")
class L1Max(Shaper):
    """Replaces the correctness part of the reward: correct rollouts' base value R becomes
    ``R·clip(α(L_T − L) + δ, 0, 1)``; wrong and unknown ones keep theirs (the paper's R is 0/1,
    so only correct rollouts change). The component is the new correctness value."""

    Options = L1MaxOptions

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        target = target_lengths(ctx.batch.metas, ctx.batch.prompt_ids, o.target, "l1_max")
        value = np.where(ctx.is_correct, ctx.base * l1_max_factor(ctx.length, target, o.alpha, o.delta), ctx.base) + 0.0
        return ctx.reward - ctx.base + value, value
