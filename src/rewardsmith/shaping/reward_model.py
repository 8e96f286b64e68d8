"""Reward-model shaping against reward hacking: ``par``, ``lsc``, ``centered``, ``meanstd``, ``clip``, ``minmax``.

Fu et al. 2025, "Reward Shaping to Mitigate Reward Hacking in RLHF" (PAR; official code
PorUna-byte/PAR). Each shaper maps a reward-model score ``r`` to a shaped reward and *replaces*
the reward with it. ``r`` is ``meta[score_key]`` when ``score_key`` is set (the usual RLHF
set-up: records carry the RM score), else the reward so far. The reference-based shapers read
the RM scores of reference responses to the same prompt from ``meta[ref_key]`` (a number or a
list; the paper uses up to 10, one suffices).

- ``par``: mean_j sigmoid(r − r_ref_j) — bounded in (0, 1), centred, fast initial growth.
- ``lsc``: log sigmoid(r − r85), r85 = the 85th percentile of a normal with the references'
  mean and *sample* standard deviation + 1e-5 (``norm.ppf(0.85, mean, std + 1e-5)`` in the
  authors' ``trainers/reward_shaper.py``; one reference has std 0).
- ``centered``: mean_j (r − r_ref_j).
- ``meanstd``: (r − μ)/σ with running (Welford) statistics updated with the batch *before*
  normalising, variance floored at 1e-8 (state).
- ``clip``: r clipped to [μ − σ, μ + σ] of the running statistics (state).
- ``minmax``: (r − min)/(max − min) over the running min/max (state); 0 while max = min.
All take ``length_penalty`` (the paper's optional r −= coef·max(0, L − valid_length); coef
0.01 and L_valid 300–550 in their scripts, off by default) applied to ``r`` first.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"length_unit": "words", "shaping": [{"name": "par", "score_key": "rm"}]})
    >>> s = pipe.score([{"prompt_id": "q", "completion": "a", "meta": {"rm": 2.0, "ref_scores": [2.0, 1.0]}}])
    >>> round(float(s.total[0]), 4)   # (sigmoid(0) + sigmoid(1)) / 2
    0.6155
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from ..registry import Options, register
from ..state import check_int, check_number
from .base import Shaper, ShapingContext

Z85 = 1.0364333894937898  # standard normal quantile at 0.85: scipy.stats.norm.ppf(0.85)
LSC_STD_EPS = 1e-5  # added to the std inside norm.ppf in the authors' code
VAR_FLOOR = 1e-8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def par_reward(r: np.ndarray, refs: list[np.ndarray]) -> np.ndarray:
    """PAR (Fu et al. 2025, Eq. 3): mean over references of sigmoid(r − r_ref)."""
    return np.array([sigmoid(ri - ref).mean() for ri, ref in zip(r, refs)])


def lsc_reward(r: np.ndarray, refs: list[np.ndarray]) -> np.ndarray:
    """LSC baseline: log sigmoid(r − r85), r85 = mean + Φ⁻¹(0.85)·(s + 1e-5) with s the sample
    standard deviation (ddof 1; 0 for a single reference) of the references' RM scores.

    Checked against PorUna-byte/PAR@b8caf40 (``trainers/reward_shaper.py``, ``utils/utils.py``).
    """
    r85 = np.array([ref.mean() + Z85 * ((ref.std(ddof=1) if len(ref) > 1 else 0.0) + LSC_STD_EPS) for ref in refs])
    x = r - r85
    return -np.logaddexp(0.0, -x)  # log sigmoid(x), stable


def centered_reward(r: np.ndarray, refs: list[np.ndarray]) -> np.ndarray:
    """Centred baseline: mean over references of (r − r_ref)."""
    return np.array([(ri - ref).mean() for ri, ref in zip(r, refs)])


def check_welford_state(state: dict[str, Any]) -> None:
    """The running statistics of :func:`welford_update`: count ≥ 0, finite mean, finite M2 ≥ 0."""
    check_int(state.get("count", 0), "count")
    check_number(state.get("mean", 0.0), "mean")
    check_number(state.get("m2", 0.0), "m2", 0.0)


def welford_update(state: dict[str, Any], values: np.ndarray) -> tuple[float, float]:
    """Add ``values`` to the running count/mean/M2 in ``state``; return (mean, population var)."""
    n, mean, m2 = int(state.get("count", 0)), float(state.get("mean", 0.0)), float(state.get("m2", 0.0))
    for v in values.astype(float):
        n += 1
        delta = v - mean
        mean += delta / n
        m2 += delta * (v - mean)
    state.update(count=n, mean=mean, m2=m2)
    return mean, (m2 / n if n else 0.0)


class RMOptions(Options):
    score_key: str | None = Field(
        default=None, description="meta key of the reward-model score; None: the reward so far"
    )
    length_penalty: float = Field(
        default=0.0, ge=0.0, description="coef of r -= coef·max(0, L − valid_length) (paper: 0.01)"
    )
    valid_length: float = Field(default=400.0, ge=0.0, description="L_valid of the length penalty (paper: 300–550)")


class RefOptions(RMOptions):
    ref_key: str = Field(default="ref_scores", description="meta key of the reference responses' RM scores")


class _RMShaper(Shaper):
    def rm_score(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        if o.score_key is None:
            r = ctx.reward.astype(np.float64)
        else:
            r = np.array([_number(m.get(o.score_key), o.score_key, i) for i, m in enumerate(ctx.batch.metas)])
        if o.length_penalty:
            r = r - o.length_penalty * np.maximum(0.0, ctx.length - o.valid_length)
        return r

    def shaped(self, r: np.ndarray, ctx: ShapingContext) -> np.ndarray:
        raise NotImplementedError

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        value = self.shaped(self.rm_score(ctx), ctx) if len(ctx.batch) else np.zeros(0)
        return value, value


class _RefShaper(_RMShaper):
    Options = RefOptions

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        """A row whose reward is unknown (its reward model failed, so it has no reference scores)
        keeps its reward unchanged here; the pipeline reports it unknown."""
        skip = ctx.unknown
        if skip is None or not skip.any():
            return super().apply(ctx)
        value = ctx.reward.astype(np.float64).copy()
        keep = ~skip
        if keep.any():
            value[keep] = self.shaped(self.rm_score(ctx)[keep], ctx, keep)
        return value, value

    def refs(self, ctx: ShapingContext, rows: np.ndarray | None = None) -> list[np.ndarray]:
        out = []
        for i, meta in enumerate(ctx.batch.metas):
            if rows is not None and not rows[i]:
                continue
            raw = meta.get(self.options.ref_key)
            values = raw if isinstance(raw, list) else [raw]
            if not values or raw is None:
                raise ValueError(
                    f"{self.name}: record {i} has no meta.{self.options.ref_key} (reference responses' RM scores)"
                )
            out.append(np.array([_number(v, self.options.ref_key, i) for v in values]))
        return out


def _number(value: Any, key: str, i: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"record {i}: meta.{key} must be a finite number, got {value!r}")
    return float(value)


@register(
    "shaper",
    "par",
    "PAR: mean sigmoid(r − r_ref) over reference responses' RM scores; bounded, centred.",
    "PAR (Fu et al., 2025)",
)
class PAR(_RefShaper):
    def shaped(self, r: np.ndarray, ctx: ShapingContext, rows: np.ndarray | None = None) -> np.ndarray:
        return par_reward(r, self.refs(ctx, rows))


@register(
    "shaper",
    "lsc",
    "Log-sigmoid centring: log sigmoid(r − r85), r85 = 85th percentile of N(mean, sample std) of the references.",
    "PAR (Fu et al., 2025), LSC baseline",
)
class LSC(_RefShaper):
    def shaped(self, r: np.ndarray, ctx: ShapingContext, rows: np.ndarray | None = None) -> np.ndarray:
        return lsc_reward(r, self.refs(ctx, rows))


@register(
    "shaper",
    "centered",
    "Centred RM reward: mean (r − r_ref) over reference responses.",
    "PAR (Fu et al., 2025), baseline",
)
class Centered(_RefShaper):
    def shaped(self, r: np.ndarray, ctx: ShapingContext, rows: np.ndarray | None = None) -> np.ndarray:
        return centered_reward(r, self.refs(ctx, rows))


@register(
    "shaper",
    "meanstd",
    "Running mean/std normalisation (Welford, updated before normalising; var floor 1e-8; stateful).",
    "PAR (Fu et al., 2025), baseline",
)
class MeanStd(_RMShaper):
    Options = RMOptions
    stateful = True

    def check_state(self, state: dict[str, Any]) -> None:
        check_welford_state(state)

    def shaped(self, r: np.ndarray, ctx: ShapingContext) -> np.ndarray:
        mean, var = welford_update(ctx.state, r)
        return (r - mean) / np.sqrt(max(var, VAR_FLOOR))


@register(
    "shaper",
    "clip",
    "Clip the RM reward to [μ − σ, μ + σ] of running statistics (stateful).",
    "PAR (Fu et al., 2025), baseline",
)
class Clip(_RMShaper):
    Options = RMOptions
    stateful = True

    def check_state(self, state: dict[str, Any]) -> None:
        check_welford_state(state)

    def shaped(self, r: np.ndarray, ctx: ShapingContext) -> np.ndarray:
        mean, var = welford_update(ctx.state, r)
        sd = np.sqrt(var)
        return np.clip(r, mean - sd, mean + sd)


@register(
    "shaper",
    "minmax",
    "Min-max scaling by the running min and max of the RM reward (stateful); 0 while they are equal.",
    "PAR (Fu et al., 2025), baseline",
)
class MinMax(_RMShaper):
    Options = RMOptions
    stateful = True

    def check_state(self, state: dict[str, Any]) -> None:
        if ("min" in state) != ("max" in state):
            raise ValueError("min and max must be given together")
        if "min" in state and check_number(state["min"], "min") > check_number(state["max"], "max"):
            raise ValueError(f"min {state['min']} > max {state['max']}")

    def shaped(self, r: np.ndarray, ctx: ShapingContext) -> np.ndarray:
        lo = min(float(r.min()), ctx.state.get("min", np.inf))
        hi = max(float(r.max()), ctx.state.get("max", -np.inf))
        ctx.state.update(min=lo, max=hi)
        return (r - lo) / (hi - lo) if hi > lo else np.zeros_like(r)
