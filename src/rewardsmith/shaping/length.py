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
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..batch import group_reduce
from ..registry import Options, register
from .base import Shaper, ShapingContext


# --------------------------------------------------------------------------- Kimi k1.5
def kimi_length_reward(
    length: np.ndarray, group: np.ndarray, n_groups: int, correct: np.ndarray, wrong: np.ndarray, coef: float
) -> np.ndarray:
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
    coef: float = Field(
        default=1.0, ge=0.0, description="weight of the length reward (LASER's reimplementation uses 0.4)"
    )
    shape_unanswered: bool = Field(
        default=False,
        description="give wrong rollouts without an answer c·min(0, λ) too; default false: left unshaped, as the "
        "only public code (LASER's compute_kimi_penalty) does — a change from earlier versions",
    )


@register(
    "shaper",
    "kimi",
    "Kimi k1.5 group length reward: correct +c·λ, wrong with an answer c·min(0, λ), λ = 0.5 − (L−Lmin)/(Lmax−Lmin).",
    "Kimi k1.5 (Kimi Team, 2025)",
)
class Kimi(Shaper):
    group_aware = True
    Options = KimiOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        """Checked against hkust-nlp/Laser@c9e7c4e ``verl/utils/reward_score/length_penalty.py``
        (``compute_kimi_penalty``: only scores 1.0 and −0.5 — correct, wrong with an answer — are
        shaped). Unlike that code, a group of one gets 0 (the code compares its length with 0..1)."""
        wrong = ctx.is_wrong if self.options.shape_unanswered else ctx.is_wrong & ctx.answered
        return kimi_length_reward(ctx.length, ctx.group, ctx.n_groups, ctx.is_correct, wrong, self.options.coef)


# --------------------------------------------------------------------------- Arora & Zanette
def efficient_reasoning_penalty(
    length: np.ndarray, group: np.ndarray, n_groups: int, correct: np.ndarray, alpha: float
) -> np.ndarray:
    """Length penalty of "Training Language Models to Reason Efficiently" (Arora & Zanette 2025,
    §3, the reward 1[correct]·(1 − α·σ((L − μ)/σ_L))), written as the added term.

    Correct rollouts get ``−α·sigmoid((L − μ)/(σ_L + 1e-7))`` with μ and σ_L the mean and
    population standard deviation of the lengths of the group's correct rollouts, as the
    authors' reward server (Zanette-Labs/efficient-reasoning@e3611e4,
    ``reward_server/math_server.py``: ``np.std(lens) + 1e-7``); other rollouts get 0. When
    σ_L = 0 (one correct rollout, or all of equal length) the z-score is 0 and every correct
    rollout gets −α/2. With base ``correct: 1`` the total equals the paper's multiplicative form.

    >>> import numpy as np
    >>> efficient_reasoning_penalty(np.array([10., 30., 99.]), np.zeros(3, int), 1, np.array([1, 1, 0], bool), 0.2).round(4).tolist()
    [-0.0538, -0.1462, 0.0]
    """
    mu = group_reduce(length, group, n_groups, "mean", where=correct)[group]
    dev = np.where(correct, length - np.nan_to_num(mu), 0.0)
    var = group_reduce(dev * dev, group, n_groups, "mean", where=correct)[group]
    z = dev / (np.sqrt(np.nan_to_num(var)) + ER_STD_EPS)
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    return np.where(correct, -alpha * sigmoid, 0.0) + 0.0


ER_STD_EPS = 1e-7  # the authors' server adds it to the std


class EfficientReasoningOptions(Options):
    alpha: float = Field(default=0.2, ge=0.0, description="strength of the penalty (the paper sweeps 0.05-0.4)")
    exclude_truncated: bool = Field(
        default=True,
        description="rollouts without EOS (truncated) score base.wrong and are left out of the group mean/std, "
        "as the authors' server (check_eos, default on); false: shaped like any other",
    )


@register(
    "shaper",
    "efficient_reasoning",
    "Correct rollouts get −α·sigmoid(z) of their length z-score among the group's correct rollouts; truncated ones score as wrong.",
    "Training Language Models to Reason Efficiently (Arora & Zanette, 2025)",
)
class EfficientReasoning(Shaper):
    """With ``exclude_truncated`` (default, the authors' server) a rollout marked ``truncated``
    scores ``base.wrong`` (the server's 0) whatever its answer, and is not one of the group's
    correct rollouts for μ and σ_L. The component is the length term (0 for truncated rows)."""

    group_aware = True
    Options = EfficientReasoningOptions

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        counted = ctx.is_correct & ~ctx.truncated if o.exclude_truncated else ctx.is_correct
        term = efficient_reasoning_penalty(ctx.length, ctx.group, ctx.n_groups, counted, o.alpha)
        new = ctx.reward + term
        if o.exclude_truncated:
            new = np.where(ctx.truncated, ctx.base_values.wrong, new) + 0.0
        return new, term


# --------------------------------------------------------------------------- L1 (LCPO)
def target_lengths(
    metas: Sequence[dict[str, Any]], prompt_ids: Sequence[str], default: float | None, where: str
) -> np.ndarray:
    """Per-row target length: ``meta.target_length`` where a record has one, else ``default``.

    Raises ``ValueError`` naming the first record that has neither (no silent fallback).
    """
    n = len(metas)
    if not any("target_length" in m for m in metas):
        if default is None and n:
            raise ValueError(
                f"{where}: record 0 (prompt_id {prompt_ids[0]!r}) has no meta.target_length and the shaper has no 'target'"
            )
        return np.full(n, np.nan if default is None else float(default))
    out = np.empty(n)
    for i, m in enumerate(metas):
        value = m.get("target_length", default)
        try:
            out[i] = math.nan if value is None else float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}: record {i} (prompt_id {prompt_ids[i]!r}): meta.target_length {value!r} is not a number"
            ) from None
        if not math.isfinite(out[i]) or out[i] < 0:
            what = (
                "has no meta.target_length and the shaper has no 'target'"
                if value is None
                else f"meta.target_length {value!r} is not a length >= 0"
            )
            raise ValueError(f"{where}: record {i} (prompt_id {prompt_ids[i]!r}) {what}")
    return out


def l1_exact_penalty(length: np.ndarray, target: np.ndarray, alpha: float) -> np.ndarray:
    """L1-Exact (Aggarwal & Welleck 2025, LCPO, Eq. 1): ``−α·|L − L_T|`` for every rollout, added
    to the correctness reward — as ``get_delta_score_linear`` in cmu-l3/l1@93dd330 ``math_reward.py``
    (its script ``run_l1_exact.sh`` uses α = 0.0003).

    >>> import numpy as np
    >>> l1_exact_penalty(np.array([90., 100., 120.]), np.array([100., 100., 100.]), 0.01).tolist()
    [-0.1, 0.0, -0.2]
    """
    return -alpha * np.abs(length - target) + 0.0


def l1_max_factor(length: np.ndarray, target: np.ndarray, alpha: float, delta: float) -> np.ndarray:
    """L1-Max (Aggarwal & Welleck 2025, LCPO-Max, Eq. 2): ``clip(α(L_T − L) + δ, 0, 1)``, the factor
    a correct rollout's reward is multiplied by. The authors' code (``get_delta_score_linear_both``
    in cmu-l3/l1@93dd330 ``math_reward.py``: ``(clip(−α(L − L_T), −1, 1) + 1)/2``) has slope α/2
    and δ = 0.5: pass ``alpha/2`` here for it (:class:`L1Max` does with ``alpha_convention: code``).

    >>> import numpy as np
    >>> l1_max_factor(np.array([0., 1000., 3000.]), np.array([1000., 1000., 1000.]), 3e-4, 0.5).round(4).tolist()
    [0.8, 0.5, 0.0]
    """
    return np.clip(alpha * (target - length) + delta, 0.0, 1.0)


class L1ExactOptions(Options):
    target: float | None = Field(
        default=None, ge=0.0, description="target length L_T; a record's meta.target_length overrides it"
    )
    alpha: float = Field(
        default=3e-4, ge=0.0, description="penalty per unit of length off target (the authors' L1-Exact script: 3e-4)"
    )


class L1MaxOptions(L1ExactOptions):
    delta: float = Field(default=0.5, description="offset δ inside the clip (the authors' code: 0.5)")
    alpha_convention: Literal["code", "paper"] = Field(
        default="code",
        description="code: slope α/2, as the authors' code ((clip(α(L_T−L), −1, 1) + 1)/2); paper: slope α as Eq. 2 — "
        "the default changed from the paper's to the code's",
    )


@register(
    "shaper",
    "l1_exact",
    "L1-Exact: −α·|L − L_T| with L_T from the option or the record's meta.target_length.",
    "L1: Controlling How Long a Reasoning Model Thinks (Aggarwal & Welleck, 2025)",
)
class L1Exact(Shaper):
    Options = L1ExactOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        target = target_lengths(ctx.batch.metas, ctx.batch.prompt_ids, self.options.target, "l1_exact")
        return l1_exact_penalty(ctx.length, target, self.options.alpha)


@register(
    "shaper",
    "l1_max",
    "L1-Max: a correct rollout's base reward R becomes R·clip(s(L_T − L) + δ, 0, 1), s = α/2 (authors' code) or α (paper).",
    "L1: Controlling How Long a Reasoning Model Thinks (Aggarwal & Welleck, 2025)",
)
class L1Max(Shaper):
    """Replaces the correctness part of the reward: correct rollouts' base value R becomes
    ``R·clip(α(L_T − L) + δ, 0, 1)``; wrong and unknown ones keep theirs (the paper's R is 0/1,
    so only correct rollouts change). The component is the new correctness value."""

    Options = L1MaxOptions

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        target = target_lengths(ctx.batch.metas, ctx.batch.prompt_ids, o.target, "l1_max")
        slope = o.alpha / 2 if o.alpha_convention == "code" else o.alpha
        value = np.where(ctx.is_correct, ctx.base * l1_max_factor(ctx.length, target, slope, o.delta), ctx.base) + 0.0
        return ctx.reward - ctx.base + value, value
