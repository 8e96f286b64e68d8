"""``hapo``: History-Aware Policy Optimization length reward (Huang et al. 2025, "HAPO: Training
Language Models to Reason Concisely via History-Aware Policy Optimization", §3).

Per prompt (``prompt_id``) HAPO remembers h, the shortest length of any correct rollout seen so
far. A batch is scored against the history as it was *before* the batch; then h ← min(h, the
shortest correct rollout of the batch). The history lives in the component state, so it
survives restarts when the spec has ``state:``.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "hapo"}]})
    >>> recs = [{"prompt_id": "q", "completion": c, "answer": "4"} for c in ("well. Answer: 4", "Answer: 4")]
    >>> pipe.score(recs).components["hapo"].tolist()  # no history yet: 0; h becomes 2
    [0.0, 0.0]
    >>> pipe.score(recs).components["hapo"].tolist()  # max(−0.7, cos(3/2·π/2)) and cos(π/2)
    [-0.7, 0.0]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..batch import group_reduce
from ..registry import Options, register
from ..state import check_number
from .base import Shaper, ShapingContext


def length_ratio(length: np.ndarray, history: np.ndarray) -> np.ndarray:
    """L/h, with 0/0 = 0 and L/0 = inf for L > 0 (NaN where h is unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = length / history
    return np.where((history == 0) & (length == 0), 0.0, ratio)


def hapo_cosine_reward(
    ratio: np.ndarray, correct: np.ndarray, wrong: np.ndarray, correct_floor: float = -0.7
) -> np.ndarray:
    """HAPO's cosine length reward (§3.2): c = cos(r·π/2) if r = L/h < 2 else −1; correct →
    max(correct_floor, c), wrong → min(0, c); no history (NaN r) or unknown correctness → 0.

    >>> import numpy as np
    >>> r = np.array([0.5, 1.0, 3.0, 0.5, 1.5, np.nan])
    >>> ok, bad = np.array([1, 1, 1, 0, 0, 1], bool), np.array([0, 0, 0, 1, 1, 0], bool)
    >>> hapo_cosine_reward(r, ok, bad).round(4).tolist()
    [0.7071, 0.0, -0.7, 0.0, -0.7071, 0.0]
    """
    r = np.nan_to_num(ratio)
    c = np.where(r < 2.0, np.sin((1.0 - np.minimum(r, 2.0)) * np.pi / 2.0), -1.0)  # = cos(r·π/2), exactly 0 at r = 1
    known = ~np.isnan(ratio)
    out = np.where(correct & known, np.maximum(correct_floor, c), np.where(wrong & known, np.minimum(0.0, c), 0.0))
    return out + 0.0


def hapo_linear_reward(
    ratio: np.ndarray, correct: np.ndarray, wrong: np.ndarray, correct_floor: float = -0.7, tolerance: float = 0.1
) -> np.ndarray:
    """HAPO's linear length reward (§3.2) with r = L/h and slack t (1.1h in the paper, t = 0.1):
    correct: 1 − r for r < 1, 0 for 1 ≤ r < 1 + t, else max(correct_floor, −(r − 1 − t));
    wrong: 0 for r < 1 + t, else max(−1, −(r − 1 − t)); no history or unknown correctness → 0.

    >>> import numpy as np
    >>> r = np.array([0.5, 1.05, 1.3, 0.5, 1.6])
    >>> ok, bad = np.array([1, 1, 1, 0, 0], bool), np.array([0, 0, 0, 1, 1], bool)
    >>> hapo_linear_reward(r, ok, bad).round(4).tolist()
    [0.5, 0.0, -0.2, 0.0, -0.5]
    """
    r = np.nan_to_num(ratio, nan=0.0)
    over = -(r - 1.0 - tolerance)
    on_correct = np.where(r < 1.0, 1.0 - r, np.where(r < 1.0 + tolerance, 0.0, np.maximum(correct_floor, over)))
    on_wrong = np.where(r < 1.0 + tolerance, 0.0, np.maximum(-1.0, over))
    known = ~np.isnan(ratio)
    return np.where(correct & known, on_correct, np.where(wrong & known, on_wrong, 0.0)) + 0.0


class HapoOptions(Options):
    weight: float = Field(default=1.0, ge=0, description="weight w of the length reward")
    variant: Literal["cosine", "linear"] = Field(default="cosine", description="cosine (the paper's default) or linear")
    correct_floor: float = Field(default=-0.7, le=0, description="lowest length reward of a correct rollout")
    tolerance: float = Field(default=0.1, ge=0, description="linear variant: no penalty for L < (1 + tolerance)·h")


@register(
    "shaper",
    "hapo",
    "History-aware length reward against the shortest correct length seen for the prompt (stateful).",
    "HAPO (Huang et al., 2025)",
)
class Hapo(Shaper):
    """State (JSON): ``history`` {prompt_id: shortest correct length}."""

    group_aware = True

    Options = HapoOptions
    stateful = True

    def check_state(self, state: dict) -> None:
        history = state.get("history", {})
        if not isinstance(history, dict):
            raise ValueError(f"history: must be an object {{prompt_id: length}}, got {type(history).__name__}")
        for key, length in history.items():
            check_number(length, f"history[{key!r}]", 0.0)  # a length: a negative one would pay any correct answer

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        history: dict[str, float] = ctx.state.setdefault("history", {})
        keys = ctx.batch.group_keys
        h_group = np.fromiter((history.get(k, np.nan) for k in keys), dtype=np.float64, count=len(keys))
        ratio = length_ratio(ctx.length, h_group[ctx.group])
        if o.variant == "cosine":
            r_len = hapo_cosine_reward(ratio, ctx.is_correct, ctx.is_wrong, o.correct_floor)
        else:
            r_len = hapo_linear_reward(ratio, ctx.is_correct, ctx.is_wrong, o.correct_floor, o.tolerance)
        shortest = group_reduce(ctx.length, ctx.group, ctx.n_groups, "min", where=ctx.is_correct)
        updated = np.fmin(h_group, shortest)
        for g in np.flatnonzero(~np.isnan(shortest)):
            history[keys[g]] = float(updated[g])
        return o.weight * r_len + 0.0
