"""Rewards from a language model's own view of the completion: ``sar``, ``flr``, ``pear``.

Each reads the batch's model signals (:mod:`rewardsmith.signals`) and adds ``coef`` times its
value to the reward. Log-probs and entropies come from the spec's ``signals.model`` (the policy,
or a chosen model) unless the records carry them (PEAR: ``meta.entropies``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..registry import Options, register
from ..signals import SignalError, token_mean
from .base import Shaper, ShapingContext


def perplexity(logprobs: np.ndarray) -> float:
    """exp(−mean token log-prob); 1 for no tokens."""
    return float(np.exp(-token_mean(logprobs)))


def self_aligned_reward(ppl_alone: float, ppl_given_query: float) -> float:
    """SAR (Han et al. 2025, Eq. 3): max((A − QA)/(A + 1e-9), −1) with A = ppl(answer), QA = ppl(answer | query)."""
    return max((ppl_alone - ppl_given_query) / (ppl_alone + 1e-9), -1.0)


class SAROptions(Options):
    coef: float = Field(default=1.0, description="weight of the self-aligned reward added to the reward")


@register(
    "shaper",
    "sar",
    "self-aligned reward: how much the query lowers the answer's perplexity (needs signals.model)",
    "Self-Aligned Reward (Han et al. 2025)",
)
class SelfAlignedReward(Shaper):
    """R = max((A − QA)/(A + 1e-9), −1), A = ppl(answer alone), QA = ppl(answer | query), both from ``signals.model``.

    An answer that restates the question is cheap given the query and costly alone (R near 1); a
    generic answer whose perplexity the query does not change scores near 0. Both perplexities come
    from the same model (scored as continuations, so records' policy log-probs are not mixed in);
    "alone" conditions on the tokenizer's BOS token only. Needs an answer of at least one token.
    """

    Options = SAROptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"continuations"})
    example_options: ClassVar[dict] = {"coef": 1.0}

    def term(self, ctx: ShapingContext) -> np.ndarray:
        b = ctx.batch
        given = ctx.require_signals().continuation_logprobs(list(zip(b.prompts, b.completions)))
        alone = ctx.require_signals().continuation_logprobs([("", c) for c in b.completions])
        value = np.array(
            [self_aligned_reward(perplexity(a), perplexity(q)) if len(q) else 0.0 for a, q in zip(alone, given)]
        )
        return self.options.coef * value


# methods.md §3 quotes one pair of FLR's reactions; the authors' six-dimension lists are not shipped here (unverified).
FLR_POSITIVE = ("That's very helpful.",)
FLR_NEGATIVE = ("That's not helpful.",)


class FLROptions(Options):
    positive: tuple[str, ...] = Field(default=FLR_POSITIVE, min_length=1, description="follow-ups of a satisfied user")
    negative: tuple[str, ...] = Field(
        default=FLR_NEGATIVE, min_length=1, description="follow-ups of a dissatisfied user"
    )
    follow_up_prefix: str = Field(default="\nUser: ", description="text between the answer and the follow-up turn")
    coef: float = 1.0


@register(
    "shaper",
    "flr",
    "follow-up likelihood: log P(positive follow-up) − log P(negative follow-up) after the answer",
    "Follow-up Likelihood as Reward (Zhang et al. 2024)",
)
class FollowUpLikelihood(Shaper):
    """score = mean_{f∈F+} ℓ(f) − mean_{f∈F−} ℓ(f), ℓ(f) = token-mean log P(f | x, y, prefix) under ``signals.model``.

    The defaults are the one positive/negative pair quoted in methods.md §3; the paper's full
    lists (six dimensions) are unverified here: pass them as ``positive``/``negative``.
    """

    Options = FLROptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"continuations"})

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        b = ctx.batch
        contexts = [p + c + o.follow_up_prefix for p, c in zip(b.prompts, b.completions)]

        def mean_ll(follow_ups: tuple[str, ...]) -> np.ndarray:
            lps = ctx.require_signals().continuation_logprobs([(x, f) for x in contexts for f in follow_ups])
            per = np.array([token_mean(lp) for lp in lps]).reshape(len(contexts), len(follow_ups))
            return per.mean(axis=1)

        return o.coef * (mean_ll(o.positive) - mean_ll(o.negative))


class PEAROptions(Options):
    think_coef: float = Field(default=0.1, ge=0.0, description="penalty per nat of mean thinking-phase entropy")
    answer_coef: float = Field(
        default=0.0, ge=0.0, description="penalty per nat of mean answer-phase entropy (0: free)"
    )
    think_end: str = Field(default="</think>", min_length=1, description="the text that ends the thinking phase")
    think_end_id: int | None = Field(default=None, description="its token id, to find it in records' meta.token_ids")
    only_correct: bool = Field(default=False, description="apply the penalty to correct rollouts only")


@register(
    "shaper",
    "pear",
    "phase entropy: penalise thinking-phase entropy, leave the answer phase free [formula unverified]",
    "PEAR (Huang et al. 2025)",
)
class PhaseEntropy(Shaper):
    """term = −(think_coef·H̄_think + answer_coef·H̄_answer), H̄ = mean token entropy of the phase
    (up to / after ``</think>``).

    UNVERIFIED: the paper's exact formula and weights were not read (methods.md has one sentence:
    penalise thinking-phase entropy, allow moderate answer-phase entropy); both weights are options.
    Entropies: ``meta.entropies`` or the signals model. The thinking phase is the first k tokens, k
    from ``meta.think_tokens``, else the position of ``think_end_id`` in ``meta.token_ids``, else the
    signals model's token count of the text up to ``think_end`` (exact when ``</think>`` is one
    added token, as in reasoning models' tokenizers). No ``think_end``: the whole completion is thinking.
    """

    Options = PEAROptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"entropies"})

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        entropies = ctx.require_signals().get("entropies")
        value = np.zeros(len(entropies))
        for i, ent in enumerate(entropies):
            k = min(self.think_tokens(ctx, i, len(ent)), len(ent))
            value[i] = -(o.think_coef * token_mean(ent[:k]) + o.answer_coef * token_mean(ent[k:]))
        return np.where(ctx.is_correct, value, 0.0) if o.only_correct else value

    def think_tokens(self, ctx: ShapingContext, i: int, n: int) -> int:
        """How many of row ``i``'s ``n`` tokens belong to the thinking phase."""
        meta, text, end = ctx.batch.metas[i], ctx.batch.completions[i], self.options.think_end
        if meta.get("think_tokens") is not None:
            return int(meta["think_tokens"])
        ids, end_id = meta.get("token_ids"), self.options.think_end_id
        if ids is not None and end_id is not None:
            return list(ids).index(end_id) + 1 if end_id in ids else n
        if end not in text:
            return n
        try:
            return ctx.require_signals().count_tokens(text[: text.index(end) + len(end)])
        except SignalError:
            raise SignalError(
                f"pear: record {i} does not say where thinking ends: give meta.think_tokens, or "
                "meta.token_ids and the think_end_id option, or a signals.model to count tokens"
            ) from None
