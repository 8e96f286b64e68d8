"""``format_length``: the label-free format-length surrogate reward (Xin et al. 2025, "Surrogate
Signals from Format and Length: Reinforcement Learning for Solving Mathematical Problems without
Ground Truth Answers", §3; code insightLLM/rl-without-gt).

No reference answer is needed: the reward looks only at the format (a ``<think>…</think>``
block; an extracted answer) and the length. By default it *replaces* the reward, so a spec can
train without ground truth: ``{"shaping": [{"name": "format_length"}]}`` with no verifier.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"length_unit": "words", "shaping": [{"name": "format_length", "max_len": 10}]})
    >>> recs = [{"prompt_id": "q", "completion": c} for c in
    ...         ("<think> a b </think> \\\\boxed{4}", "<think> a b c d e f </think> \\\\boxed{4}", "no format at all")]
    >>> pipe.score(recs).total.round(4).tolist()
    [2.0, 0.72, 0.0]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..registry import Options, register
from ..verifiers.extract import EXTRACTION_RULES, extract_answer
from .base import Shaper, ShapingContext

AnswerSource = Literal["verifier", "boxed", "answer_tag", "hash", "answer_colon"]
assert set(AnswerSource.__args__) == {"verifier", *EXTRACTION_RULES}  # type: ignore[attr-defined]


def length_score(length: np.ndarray, max_len: float, peak: float = 0.5) -> np.ndarray:
    """The surrogate's length term ℓ(x), x = clip(L/max_len, 0, 1): 1 − (1 − x/p)² up to the peak
    p (ℓ = 1 at x = p), then 1 − 2((x − p)/(1 − p))² down to −1 at x = 1 (and beyond).

    >>> import numpy as np
    >>> length_score(np.array([0., 768., 1536., 2304., 3072., 5000.]), 3072).tolist()
    [0.0, 0.75, 1.0, 0.5, -1.0, -1.0]
    """
    x = np.clip(length / max_len, 0.0, 1.0)
    return np.where(x <= peak, 1.0 - (1.0 - x / peak) ** 2, 1.0 - 2.0 * ((x - peak) / (1.0 - peak)) ** 2)


def has_think_block(completion: str) -> bool:
    """A ``<think>`` followed later by ``</think>`` (the surrogate's soft format check)."""
    start = completion.find("<think>")
    return start >= 0 and completion.find("</think>", start + 7) >= 0


def format_length_reward(
    soft_format: np.ndarray,
    answer_format: np.ndarray,
    length: np.ndarray,
    max_len: float,
    peak: float = 0.5,
    with_length: bool = True,
) -> np.ndarray:
    """Format-Length: ``0.5·(soft + answer) + ℓ`` when an answer was found, else ``min(0, ℓ)``
    alone — a completion without an answer gets no format credit (a reasoning block alone
    earns nothing) and can only lose by length. ``with_length=False`` gives the Format-Only
    reward ``0.5·(soft + answer)``. Checked against insightLLM/rl-without-gt@c1e2077
    (``rl/verl/lib/src/rewards/math_reward.py``, ``RewardMathFn_xrh``).

    >>> import numpy as np
    >>> format_length_reward(np.array([1., 1., 0.]), np.array([1., 0., 0.]), np.array([1536., 1536., 3072.]), 3072).tolist()
    [2.0, 0.0, -1.0]
    """
    fmt = 0.5 * (soft_format + answer_format)
    if not with_length:
        return fmt
    ell = length_score(length, max_len, peak)
    return np.where(answer_format > 0, fmt + ell, np.minimum(0.0, ell)) + 0.0


class FormatLengthOptions(Options):
    max_len: float = Field(default=3072, gt=0, description="length at which ℓ reaches −1")
    peak: float = Field(default=0.5, gt=0, lt=1, description="x = L/max_len at which ℓ peaks at 1")
    answer_from: AnswerSource = Field(
        default="boxed",
        description="how answer_format is decided: an extraction rule, or 'verifier' (the spec's verifier found an answer; needs references)",
    )
    variant: Literal["format_length", "format_only"] = Field(
        default="format_length", description="format_only drops the length term"
    )
    mode: Literal["replace", "add"] = Field(
        default="replace", description="replace the reward (label-free training) or add to it"
    )


@register(
    "shaper",
    "format_length",
    "Label-free surrogate: 0.5·(think block + answer) + a length term peaking at peak·max_len; no answer: min(0, length term).",
    "Surrogate Signals from Format and Length (Xin et al., 2025)",
)
class FormatLength(Shaper):
    """The component is the surrogate reward. ``answer_from: boxed`` (default) counts a non-empty
    ``\\boxed{}`` as an answer — the paper also requires it to parse as math, which needs
    math-verify per rollout and is left out here. The authors' ℓ is not clipped past
    ``max_len`` (their generation limit equals it); here ``L/max_len`` is clipped to 1."""

    Options = FormatLengthOptions

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        texts = ctx.batch.completions
        soft = np.fromiter((has_think_block(t) for t in texts), dtype=np.float64, count=len(texts))
        if o.answer_from == "verifier":
            answer = ctx.answered.astype(np.float64)
        else:
            rules = (o.answer_from,)
            answer = np.fromiter(
                (extract_answer(t, rules) is not None for t in texts), dtype=np.float64, count=len(texts)
            )
        value = format_length_reward(soft, answer, ctx.length, o.max_len, o.peak, o.variant == "format_length")
        return (value.copy() if o.mode == "replace" else ctx.reward + value), value
