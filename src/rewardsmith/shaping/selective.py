"""``grpo_lambda``: length-penalise only the groups the policy already solves best [unverified].

GRPO-λ ("Stable Reinforcement Learning for Efficient Reasoning", 2025; unverified): per batch,
rank the groups by their share of correct rollouts; the top ``top_fraction`` of groups get a
length-penalised reward (any length shaper, Kimi's by default), the others keep plain correctness.
The number of groups is ⌈top_fraction·G⌉ [unverified]; how ties at the cut-off are broken is ``tie_break``.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "grpo_lambda"}]})
    >>> recs = [{"prompt_id": p, "completion": c, "answer": "4"}
    ...         for p, c in [("a", "Answer: 4"), ("a", "so so so. Answer: 4"), ("b", "Answer: 4"), ("b", "so so so. Answer: 5")]]
    >>> pipe.score(recs).components["grpo_lambda"].tolist()  # group a (2/2 correct) is penalised, b (1/2) is not
    [0.5, -0.5, 0.0, 0.0]
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..registry import Options, build, register
from .base import Shaper, ShapingContext

TieBreak = Literal["first", "random", "include", "exclude"]


def select_top_groups(
    ratio: np.ndarray, top_fraction: float, tie_break: TieBreak = "first", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Boolean mask of the groups in the top ``top_fraction`` (⌈top_fraction·G⌉ groups) by ``ratio``.

    Ties at the cut-off: ``first`` — earlier groups in the batch win; ``random`` — a random order
    from ``rng``; ``include`` — every group tied with the last one in gets in (may exceed the
    fraction); ``exclude`` — none of the tied groups gets in unless all fit (may fall short).

    >>> import numpy as np
    >>> r = np.array([0.5, 1.0, 0.5, 0.0])
    >>> [select_top_groups(r, 0.5, t).tolist() for t in ("first", "include", "exclude")]
    [[True, True, False, False], [True, True, True, False], [False, True, False, False]]
    """
    n_groups = len(ratio)
    n_top = min(n_groups, math.ceil(top_fraction * n_groups - 1e-9))
    chosen = np.zeros(n_groups, dtype=bool)
    if n_top == 0:
        return chosen
    if tie_break == "random":
        perm = (rng or np.random.default_rng()).permutation(n_groups)
        chosen[perm[np.argsort(-ratio[perm], kind="stable")[:n_top]]] = True
        return chosen
    order = np.argsort(-ratio, kind="stable")
    if tie_break == "first":
        chosen[order[:n_top]] = True
        return chosen
    cutoff = ratio[order[n_top - 1]]
    at_least = ratio >= cutoff
    if tie_break == "include" or at_least.sum() == n_top:
        return at_least
    return ratio > cutoff


class GrpoLambdaOptions(Options):
    top_fraction: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="share of groups (by correctness ratio) that get the length penalty [unverified]",
    )
    penalty: str | dict[str, Any] = Field(
        default_factory=lambda: {"name": "kimi"},
        description="the length shaper applied to the chosen groups, as in shaping:",
    )
    tie_break: TieBreak = Field(default="first", description="ties at the cut-off: first | random | include | exclude")
    seed: int = Field(
        default=0, description="seed of tie_break: random (mixed with the step, so runs are reproducible)"
    )


@register(
    "shaper",
    "grpo_lambda",
    "GRPO-λ: the top fraction of groups by correctness ratio get a length shaper (Kimi by default), the rest plain correctness [unverified].",
    "GRPO-λ [unverified]",
)
class GrpoLambda(Shaper):
    """The component is the change the penalty shaper makes on the chosen groups (0 elsewhere).
    A stateful penalty shaper keeps its state under this component's ``penalty`` key and sees the
    whole batch (e.g. HAPO's history is updated from every group)."""

    group_aware = True

    Options = GrpoLambdaOptions

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self.penalty: Shaper = build("shaper", self.options.penalty, field="grpo_lambda.penalty")  # type: ignore[assignment]

    def check_state(self, state: dict[str, Any]) -> None:
        self.penalty.check_state(state.get("penalty", {}))

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        n_correct = np.bincount(ctx.group[ctx.is_correct], minlength=ctx.n_groups)
        ratio = n_correct / np.maximum(ctx.batch.group_sizes, 1)
        rng = np.random.default_rng([o.seed, max(ctx.step, 0)])
        chosen = select_top_groups(ratio, o.top_fraction, o.tie_break, rng)[ctx.group]
        shaped, _ = self.penalty.apply(ctx.with_state(ctx.state.setdefault("penalty", {})))
        return np.where(chosen, shaped - ctx.reward, 0.0) + 0.0
