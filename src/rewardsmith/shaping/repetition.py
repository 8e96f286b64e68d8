"""``repetition``: n-gram repetition penalty (Demystifying Long CoT, Yeo et al. 2025, §C.2).

penalty = max_penalty · (1 − #distinct n-grams / #n-grams), over words or token ids; 0 when the
completion has fewer than ``ngram`` units. Added to the reward under ``components.repetition``.

Words are lower-cased first (``lowercase``, default on as open-r1's
``get_repetition_penalty_reward``; "This is" and "this is" are the same n-gram). Text without
spaces between words (Chinese, Japanese) needs a ``segmenter``: ``jieba`` (open-r1's choice for
``language="zh"``; the ``cjk`` extra) or ``cjk_bigrams``, a dependency-free fallback that cuts
every run of CJK characters into overlapping character bigrams (see :func:`cjk_bigram_units`).

    >>> from rewardsmith.shaping.repetition import repetition_penalty
    >>> repetition_penalty("a b a b a b".split(), ngram=2, max_penalty=-1.0)
    -0.6
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..registry import Options, register
from .base import Shaper, ShapingContext

_WORD = re.compile(r"\S+")
# CJK ideographs (unified + extension A + compatibility), kana, hangul syllables, CJK and full-width punctuation.
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_CJK_RUN_OR_WORD = re.compile(rf"[{_CJK}]+|[^\s{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")

Segmenter = Literal["whitespace", "jieba", "cjk_bigrams"]


def repetition_penalty(units: Sequence, ngram: int, max_penalty: float) -> float:
    n_grams = len(units) - ngram + 1
    if n_grams <= 0:
        return 0.0
    distinct = len(set(zip(*(units[k:] for k in range(ngram)))))
    return float(max_penalty * (1.0 - distinct / n_grams)) + 0.0  # + 0.0: no -0.0 in output


def cjk_bigram_units(text: str) -> list[str]:
    """Units for text without word spaces, no dictionary needed: each run of CJK characters
    becomes its overlapping character bigrams (a lone character stays itself); other runs are
    split on white space. "这个这个" → 这个, 个这, 这个 — a repeated word repeats its bigrams, so
    repetition is still measured, with n-grams a character longer than jieba's.

    >>> cjk_bigram_units("我们 test 这个这个")
    ['我们', 'test', '这个', '个这', '这个']
    """
    units: list[str] = []
    for run in _CJK_RUN_OR_WORD.findall(text):
        if _IS_CJK.match(run):
            units.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            units.append(run)
    return units


def _jieba_units() -> Callable[[str], list[str]]:
    try:
        import jieba
    except ImportError:
        raise ValueError(
            "segmenter 'jieba' needs the jieba package (pip install 'rewardsmith[cjk]'); 'cjk_bigrams' needs nothing"
        ) from None
    import logging

    jieba.setLogLevel(logging.WARNING)
    return lambda text: [w for w in jieba.lcut(text) if w.strip()]


class RepetitionOptions(Options):
    ngram: int = Field(default=3, ge=1)
    max_penalty: float = Field(default=-1.0, le=0.0, description="penalty of a completion that is one n-gram repeated")
    unit: Literal["words", "tokens"] = Field(
        default="words", description="'tokens' uses meta.token_ids / completion_ids, words where absent"
    )
    lowercase: bool = Field(
        default=True,
        description="lower-case words before comparing (open-r1); a change from earlier versions, which were case-sensitive",
    )
    segmenter: Segmenter = Field(
        default="whitespace",
        description="how words are cut: whitespace; jieba (Chinese word segmenter, the cjk extra; open-r1's zh); "
        "cjk_bigrams (CJK runs as overlapping character bigrams, no dependency)",
    )

    @model_validator(mode="after")
    def _segmenter_available(self) -> RepetitionOptions:
        if self.segmenter == "jieba":
            _jieba_units()  # fail at spec load, not mid-run
        return self


@register(
    "shaper",
    "repetition",
    "N-gram repetition penalty: max_penalty x (1 - distinct/total n-grams); lower-cased words, optional CJK segmenter.",
    "Demystifying Long CoT (Yeo et al., 2025)",
)
class Repetition(Shaper):
    """Checked against open-r1's ``get_repetition_penalty_reward`` (huggingface/open-r1@1416fa0,
    ``src/open_r1/rewards.py``: lower-cased white-space words, jieba for Chinese) and TRL's
    (huggingface/trl@f2cd577, over completion token ids)."""

    needs_tokens = True
    Options = RepetitionOptions

    def __init__(self, options: Options | None = None, **kwargs):
        super().__init__(options, **kwargs)
        seg = self.options.segmenter
        self._split: Callable[[str], list[str]] = (
            _jieba_units() if seg == "jieba" else cjk_bigram_units if seg == "cjk_bigrams" else _WORD.findall
        )

    def words(self, text: str) -> list[str]:
        return self._split(text.lower() if self.options.lowercase else text)

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        out = np.empty(len(ctx.batch))
        for i, text in enumerate(ctx.batch.completions):
            ids = ctx.batch.token_ids[i] if o.unit == "tokens" else None
            units = list(ids) if ids is not None else self.words(text)
            out[i] = repetition_penalty(units, o.ngram, o.max_penalty)
        return out
