"""``repetition``: n-gram repetition penalty (Demystifying Long CoT, Yeo et al. 2025, §C.2).

penalty = max_penalty · (1 − #distinct n-grams / #n-grams), over words or token ids; 0 when the
completion has fewer than ``ngram`` units. Added to the reward under ``components.repetition``.

    >>> from rewardsmith.shaping.repetition import repetition_penalty
    >>> repetition_penalty("a b a b a b".split(), ngram=2, max_penalty=-1.0)
    -0.6
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from ..registry import Options, register
from .base import Shaper, ShapingContext

_WORD = re.compile(r"\S+")


def repetition_penalty(units: Sequence, ngram: int, max_penalty: float) -> float:
    n_grams = len(units) - ngram + 1
    if n_grams <= 0:
        return 0.0
    distinct = len(set(zip(*(units[k:] for k in range(ngram)))))
    return float(max_penalty * (1.0 - distinct / n_grams)) + 0.0  # + 0.0: no -0.0 in output


class RepetitionOptions(Options):
    ngram: int = Field(default=3, ge=1)
    max_penalty: float = Field(default=-1.0, le=0.0, description="penalty of a completion that is one n-gram repeated")
    unit: Literal["words", "tokens"] = Field(default="words", description="'tokens' uses meta.token_ids / completion_ids, words where absent")


@register("shaper", "repetition", "N-gram repetition penalty: max_penalty x (1 - distinct/total n-grams).", "Demystifying Long CoT (Yeo et al., 2025)")
class Repetition(Shaper):
    Options = RepetitionOptions

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        out = np.empty(len(ctx.batch))
        for i, text in enumerate(ctx.batch.completions):
            ids = ctx.batch.token_ids[i] if o.unit == "tokens" else None
            units = list(ids) if ids is not None else _WORD.findall(text)
            out[i] = repetition_penalty(units, o.ngram, o.max_penalty)
        return out
