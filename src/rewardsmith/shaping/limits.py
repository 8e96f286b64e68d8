"""Shaping against a maximum length: ``cosine``, ``dapo_overlong``, ``truncation``.

``cosine`` replaces the correctness part of the reward (as TRL's and open-r1's cosine reward
stands in for the accuracy reward); ``truncation`` replaces the whole reward of rollouts over
the limit; ``dapo_overlong`` adds a penalty.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words",
    ...                   "shaping": [{"name": "dapo_overlong", "max_len": 4, "buffer": 2}]})
    >>> recs = [{"prompt_id": "q", "completion": c, "answer": "4"}
    ...         for c in ("Answer: 4", "well. Answer: 4", "so so so. Answer: 4")]
    >>> pipe.score(recs).components["dapo_overlong"].tolist()
    [0.0, -0.5, -1.0]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from ..registry import Options, register
from .base import Shaper, ShapingContext


# --------------------------------------------------------------------------- cosine
def cosine_length_reward(
    length: np.ndarray,
    correct: np.ndarray,
    max_len: float,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
) -> np.ndarray:
    """Cosine length-scaled correctness reward (Yeo et al. 2025, "Demystifying Long Chain-of-Thought
    Reasoning in LLMs", Appendix C.1, Eq. 1).

    ``r = v_min + ½(v_max − v_min)(1 + cos(π·p))`` with progress ``p = clip(L/max_len, 0, 1)``
    (clamped: without it cos climbs back up past ``max_len``, open-r1 bug #312). Correct
    rollouts go from ``max_value_correct`` at L = 0 to ``min_value_correct`` at max_len; wrong
    ones from ``min_value_wrong`` at L = 0 to ``max_value_wrong`` at max_len (short wrong
    answers are penalised most). Defaults are TRL's/open-r1's; the paper uses (2, 1) correct
    and (−10, 0) wrong.

    >>> import numpy as np
    >>> cosine_length_reward(np.array([0., 50., 100., 150.]), np.array([1, 1, 0, 0], bool), 100).tolist()
    [1.0, 0.75, -0.5, -0.5]
    """
    progress = np.clip(length / max_len, 0.0, 1.0)
    cosine = np.cos(np.pi * progress)
    at_end = np.where(correct, min_value_correct, max_value_wrong)
    at_start = np.where(correct, max_value_correct, min_value_wrong)
    return at_end + 0.5 * (at_start - at_end) * (1.0 + cosine)


class CosineOptions(Options):
    max_len: float = Field(..., gt=0, description="length L_max at which the schedule ends")
    min_value_wrong: float = Field(default=-1.0, description="reward of a wrong rollout of length 0")
    max_value_wrong: float = Field(default=-0.5, description="reward of a wrong rollout of length >= max_len")
    min_value_correct: float = Field(default=0.5, description="reward of a correct rollout of length >= max_len")
    max_value_correct: float = Field(default=1.0, description="reward of a correct rollout of length 0")
    exceed_penalty: float | None = Field(
        default=0.0,
        description="reward of a rollout with L >= max_len - exceed_margin; default 0 as the authors' code (exceed_length unset "
        "-> 0; the paper's runs: -10); None: off, as TRL's and open-r1's cosine reward — the default changed from None",
    )
    exceed_margin: float = Field(
        default=16,
        ge=0,
        description="the exceed penalty starts exceed_margin before max_len (the paper's code: 16 tokens)",
    )

    @model_validator(mode="after")
    def _margin_fits(self) -> CosineOptions:
        if self.exceed_penalty is not None and self.exceed_margin >= self.max_len:
            raise ValueError(
                f"exceed_margin ({self.exceed_margin}) >= max_len ({self.max_len}): every rollout would get exceed_penalty; "
                "lower exceed_margin or set exceed_penalty: null"
            )
        return self


@register(
    "shaper",
    "cosine",
    "Cosine length-scaled correctness reward (replaces the base reward); rollouts within exceed_margin of max_len get exceed_penalty (0).",
    "Demystifying Long Chain-of-Thought Reasoning in LLMs (Yeo et al., 2025)",
)
class Cosine(Shaper):
    """Replaces the base correctness reward with the cosine reward: ``reward − base + cosine``
    (terms added before it — format, repetition — stay). Rollouts with ``L ≥ max_len −
    exceed_margin`` get ``exceed_penalty`` instead, correct or not: the authors' code
    (eddycmu/demystify-long-cot@e90cf9b ``openrlhf/openrlhf/reward/cosine.py``, ``MAX_LEN_MARGIN``
    16) always does this, with 0 when no exceed value is given — so the default is 0;
    ``exceed_penalty: null`` turns it off (TRL, open-r1). Rollouts of unknown correctness keep
    their reward. The component is the new correctness value."""

    Options = CosineOptions
    example_options = {"max_len": 300}

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        value = cosine_length_reward(
            ctx.length,
            ctx.is_correct,
            o.max_len,
            o.min_value_wrong,
            o.max_value_wrong,
            o.min_value_correct,
            o.max_value_correct,
        )
        if o.exceed_penalty is not None:
            value = np.where(ctx.length >= o.max_len - o.exceed_margin, o.exceed_penalty, value)
        value = np.where(np.isnan(ctx.correct), ctx.base, value) + 0.0
        return ctx.reward - ctx.base + value, value


# --------------------------------------------------------------------------- DAPO
def dapo_overlong_penalty(length: np.ndarray, max_len: float, buffer: float, factor: float = 1.0) -> np.ndarray:
    """DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", Eq. 13), times ``factor``.

    0 for L ≤ max_len − buffer; (max_len − buffer − L)/buffer on the ramp up to max_len; −1 beyond.

    >>> import numpy as np
    >>> dapo_overlong_penalty(np.array([80., 90., 100., 101.]), max_len=100, buffer=20).tolist()
    [0.0, -0.5, -1.0, -1.0]
    """
    start = max_len - buffer
    ramp = (start - length) / buffer if buffer > 0 else np.zeros(len(length))
    penalty = np.where(length <= start, 0.0, np.where(length <= max_len, ramp, -1.0))
    return factor * penalty + 0.0


class DapoOverlongOptions(Options):
    max_len: float = Field(..., gt=0, description="the generation limit L_max")
    buffer: float = Field(..., ge=0, description="the soft punishment buffer L_cache (DAPO: 4096 tokens)")
    factor: float = Field(default=1.0, ge=0, description="weight of the penalty")

    @model_validator(mode="after")
    def _buffer_fits(self) -> DapoOverlongOptions:
        if self.buffer > self.max_len:
            raise ValueError(f"buffer ({self.buffer}) must not exceed max_len ({self.max_len})")
        return self


@register(
    "shaper",
    "dapo_overlong",
    "DAPO soft overlong punishment: 0 until max_len − buffer, a linear ramp to −1 at max_len, −1 beyond.",
    "DAPO (Yu et al., 2025)",
)
class DapoOverlong(Shaper):
    Options = DapoOverlongOptions
    example_options = {"max_len": 300, "buffer": 100}

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        return dapo_overlong_penalty(ctx.length, o.max_len, o.buffer, o.factor)


# --------------------------------------------------------------------------- truncation
def truncation_reward(
    reward: np.ndarray,
    length: np.ndarray,
    truncated: np.ndarray,
    max_len: float,
    value: float,
    no_eos_coef: float | None = None,
    grade_cut_text: bool = False,
) -> np.ndarray:
    """Hard length budget (ThinkPrune, Hou et al. 2025, §3; DLER, Liu et al. 2025, §3).

    Rollouts longer than ``max_len`` score ``value`` (the wrong-answer reward). Rollouts marked
    ``truncated`` (no EOS) score ``value`` too, unless ``no_eos_coef`` is set: then those within
    the budget get ``reward·no_eos_coef`` instead (DLER's penalty_coef 0.1 for a rollout that did
    not stop properly). With ``grade_cut_text`` (ThinkPrune) a truncated rollout within the
    budget keeps the reward its text earned: ThinkPrune's code (UCSB-NLP-Chang/ThinkPrune@0f7449b,
    ``verl/trainer/main_ppo.py``) enforces the limit by cutting generation and grades the cut
    text like any other, so a cut completion that already holds a correct answer is paid.

    >>> import numpy as np
    >>> truncation_reward(np.array([1., 1., 1.]), np.array([10., 30., 10.]), np.array([False, False, True]), 20, 0.0).tolist()
    [1.0, 0.0, 0.0]
    >>> truncation_reward(np.array([1., 1., 1.]), np.array([10., 30., 10.]), np.array([False, False, True]), 20, 0.0, 0.1).tolist()
    [1.0, 0.0, 0.1]
    """
    over = length > max_len
    if grade_cut_text:
        return np.where(over, value, reward) + 0.0
    if no_eos_coef is None:
        return np.where(over | truncated, value, reward) + 0.0
    return np.where(over, value, np.where(truncated, reward * no_eos_coef, reward)) + 0.0


class TruncationOptions(Options):
    max_len: float = Field(..., gt=0, description="the length budget L_T (DLER: 4000 tokens)")
    value: float | None = Field(
        default=None, description="reward of a rollout over the budget; None: the spec's base.wrong"
    )
    no_eos_coef: float | None = Field(
        default=None,
        ge=0,
        description="if set, truncated rollouts within the budget get reward·no_eos_coef instead of value (DLER: 0.1)",
    )
    grade_cut_text: bool = Field(
        default=False,
        description="ThinkPrune: truncated rollouts within the budget keep the reward their (cut) text earned; "
        "default false as DLER's code (no-EOS rollouts score like wrong ones)",
    )

    @model_validator(mode="after")
    def _one_rule_for_cut_rollouts(self) -> TruncationOptions:
        if self.grade_cut_text and self.no_eos_coef is not None:
            raise ValueError(
                "grade_cut_text (ThinkPrune) and no_eos_coef (DLER) are two rules for the same cut rollouts; choose one"
            )
        return self


@register(
    "shaper",
    "truncation",
    "Hard budget: rollouts over max_len (or truncated) score like a wrong answer; optional DLER no-EOS factor.",
    "ThinkPrune (Hou et al., 2025); DLER (Liu et al., 2025)",
)
class Truncation(Shaper):
    """Replaces the whole reward of rollouts over the budget; the component is the new reward.

    A rollout longer than ``max_len`` that was *not* cut (a generation limit above the budget)
    still scores ``value`` with ``grade_cut_text``: the shaper cannot re-grade its first
    ``max_len`` units — set the generation limit to the budget, as ThinkPrune does."""

    Options = TruncationOptions
    example_options = {"max_len": 300}

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        value = ctx.base_values.wrong if o.value is None else o.value
        new = truncation_reward(
            ctx.reward, ctx.length, ctx.truncated, o.max_len, value, o.no_eos_coef, o.grade_cut_text
        )
        return new, new.copy()
