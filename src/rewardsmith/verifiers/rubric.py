"""``rubric``: nugget-as-rubric reward with a lexical support rule (no LLM judge).

Search-Gen-V ("An Efficient Rubric-based Generative Verifier for Search-Augmented LLMs",
2025; nugget-as-rubric) [unverified]: each reference nugget is judged *supported*,
*partially supported* or *not supported* by the response, and
``reward = (#supported + 0.5·#partial) / #nuggets`` (with per-nugget weights:
``Σ w·s / Σ w``, s ∈ {1, 0.5, 0}). The paper's judge is a generative verifier (an LLM); none
is available offline, so support is decided here by a documented lexical rule:

1. text → tokens: casefolded ``\\w+`` words, minus a small list of English function words,
   with a plural ``s`` stripped (``stem``; "cats" → "cat", not "class" or "status");
2. coverage of a nugget = |nugget tokens ∩ window tokens| / |nugget tokens|, maximised over
   windows of ``window`` consecutive sentences of the response (``window: 0`` = the whole
   response; a window keeps a long answer that merely lists many words from getting credit
   spread over unrelated sentences);
3. supported if coverage ≥ ``support_threshold`` (0.8 [unverified]), partial if
   ≥ ``partial_threshold`` (0.5 [unverified]).

It measures lexical overlap, not entailment: a negated or paraphrased statement is judged
by its words. Nuggets are ``meta.nuggets``: strings or ``{"text": ..., "weight": ...}``.
The response is the ``<answer>…</answer>`` content when present, else the completion with
any ``<think>…</think>`` block removed.

    >>> from rewardsmith.verifiers.rubric import RubricVerifier
    >>> v = RubricVerifier()
    >>> nuggets = ["Paris is the capital of France", "The Eiffel Tower opened in 1889", "Lyon is the third largest city"]
    >>> verdict = v.check(v.job("Paris is the capital of France. The Eiffel Tower dates from 1889.", None, {"nuggets": nuggets}))
    >>> verdict.score, verdict.detail  # (1 + 0.5) / 3
    (0.5, 'supported 1, partial 1, unsupported 1 of 3 nuggets')
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, NO_ANSWER, OK, Job, Verdict, Verifier

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "into", "onto", "over", "under", "about", "than", "then", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "has", "have", "had", "it", "its", "this", "that", "these", "those", "there", "which", "who", "whom", "whose", "what", "when", "where", "how", "so", "such", "not", "no", "nor", "can", "could", "may", "might", "must", "shall", "should", "will", "would", "also", "very", "just"]
)


def content_tokens(text: str, stem: bool = True) -> list[str]:
    """Casefolded words of ``text`` without function words (plural ``s`` stripped if ``stem``)."""
    out = []
    for w in _WORD.findall(text.casefold()):
        if w in STOPWORDS:
            continue
        if stem and len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        out.append(w)
    return out


def sentences(text: str) -> list[str]:
    """Sentences split after ``. ! ?`` followed by space, and at newlines (empty ones dropped)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def nugget_coverage(nugget: set[str], windows: list[set[str]]) -> float:
    """Largest fraction of the nugget's tokens found in one window."""
    return max((len(nugget & w) / len(nugget) for w in windows), default=0.0)


def nugget_reward(labels: list[float], weights: list[float]) -> float:
    """Search-Gen-V: Σ w·s / Σ w with s = 1 (supported), 0.5 (partial), 0 (not supported)."""
    return sum(w * s for w, s in zip(weights, labels)) / sum(weights)


class RubricOptions(Options):
    support_threshold: float = Field(default=0.8, gt=0.0, le=1.0, description="coverage for 'supported' [unverified]")
    partial_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="coverage for 'partially supported' [unverified]"
    )
    window: int = Field(
        default=2, ge=0, description="sentences per window a nugget must be found in; 0 = whole response [unverified]"
    )
    stem: bool = Field(default=True, description="strip a plural 's' from tokens")

    @model_validator(mode="after")
    def _order(self) -> RubricOptions:
        if self.partial_threshold > self.support_threshold:
            raise ValueError("partial_threshold must not exceed support_threshold")
        return self


@register(
    "verifier",
    "rubric",
    "Nugget-as-rubric reward (#supported + 0.5·#partial)/#nuggets with a lexical support rule.",
    "Search-Gen-V: a rubric-based generative verifier for search-augmented LLMs (2025)",
)
class RubricVerifier(Verifier):
    Options = RubricOptions
    isolate = False  # linear tokenising and set arithmetic

    def extract(self, completion: str) -> str | None:
        found = _ANSWER.findall(completion)
        text = found[-1] if found else _THINK.sub(" ", completion)
        return text.strip() or None

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        return Job(self.extract(completion) or "", None, {"nuggets": meta.get("nuggets")})

    def check(self, job: Job) -> Verdict:
        o = self.options
        raw = (job.meta or {}).get("nuggets")
        if not isinstance(raw, list) or not raw:
            return Verdict(float("nan"), BAD_REFERENCE, "meta.nuggets must be a non-empty list")
        nuggets: list[tuple[set[str], float]] = []
        for item in raw:
            text, weight = (
                (item.get("text", ""), float(item.get("weight", 1.0))) if isinstance(item, dict) else (str(item), 1.0)
            )
            tokens = set(content_tokens(str(text), o.stem))
            if tokens and weight > 0:
                nuggets.append((tokens, weight))
        if not nuggets:
            return Verdict(float("nan"), BAD_REFERENCE, "no nugget has a content word and a positive weight")
        if not job.prediction:
            return Verdict(0.0, NO_ANSWER, "empty response")
        sents = sentences(job.prediction)
        if o.window == 0 or len(sents) <= o.window:
            windows = [set(content_tokens(job.prediction, o.stem))]
        else:
            per = [set(content_tokens(s, o.stem)) for s in sents]
            windows = [set().union(*per[i : i + o.window]) for i in range(len(per) - o.window + 1)]
        labels = []
        for tokens, _ in nuggets:
            c = nugget_coverage(tokens, windows)
            labels.append(1.0 if c >= o.support_threshold else 0.5 if c >= o.partial_threshold else 0.0)
        n_sup, n_part = labels.count(1.0), labels.count(0.5)
        detail = (
            f"supported {n_sup}, partial {n_part}, unsupported {len(labels) - n_sup - n_part} of {len(labels)} nuggets"
        )
        return Verdict(nugget_reward(labels, [w for _, w in nuggets]), OK, detail)
