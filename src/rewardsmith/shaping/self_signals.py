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


@register("shaper", "sar", "self-aligned reward: how much the query lowers the answer's perplexity (needs signals.model)",
          "Self-Aligned Reward (Han et al. 2025)")
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
        given = _signals(ctx).continuation_logprobs(list(zip(b.prompts, b.completions)))
        alone = _signals(ctx).continuation_logprobs([("", c) for c in b.completions])
        value = np.array([self_aligned_reward(perplexity(a), perplexity(q)) if len(q) else 0.0 for a, q in zip(alone, given)])
        return self.options.coef * value


# methods.md §3 quotes one pair of FLR's reactions; the authors' six-dimension lists are not shipped here (unverified).
FLR_POSITIVE = ("That's very helpful.",)
FLR_NEGATIVE = ("That's not helpful.",)


class FLROptions(Options):
    positive: tuple[str, ...] = Field(default=FLR_POSITIVE, min_length=1, description="follow-ups of a satisfied user")
    negative: tuple[str, ...] = Field(default=FLR_NEGATIVE, min_length=1, description="follow-ups of a dissatisfied user")
    follow_up_prefix: str = Field(default="\nUser: ", description="text between the answer and the follow-up turn")
    coef: float = 1.0


@register("shaper", "flr", "follow-up likelihood: log P(positive follow-up) − log P(negative follow-up) after the answer",
          "Follow-up Likelihood as Reward (Zhang et al. 2024)")
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
            lps = _signals(ctx).continuation_logprobs([(x, f) for x in contexts for f in follow_ups])
            per = np.array([token_mean(lp) for lp in lps]).reshape(len(contexts), len(follow_ups))
            return per.mean(axis=1)

        return o.coef * (mean_ll(o.positive) - mean_ll(o.negative))


class PEAROptions(Options):
    think_coef: float = Field(default=0.1, ge=0.0, description="penalty per nat of mean thinking-phase entropy")
    answer_coef: float = Field(default=0.0, ge=0.0, description="penalty per nat of mean answer-phase entropy (0: free)")
    think_end: str = Field(default="</think>", min_length=1, description="the text that ends the thinking phase")
    think_end_id: int | None = Field(default=None, description="its token id, to split records' meta.entropies by meta.token_ids")
    only_correct: bool = Field(default=False, description="apply the penalty to correct rollouts only")


@register("shaper", "pear", "phase entropy: penalise thinking-phase entropy, leave the answer phase free [formula unverified]",
          "PEAR (Huang et al. 2025)")
class PhaseEntropy(Shaper):
    """term = −(think_coef·H̄_think + answer_coef·H̄_answer), H̄ = mean token entropy of the phase (before/after ``</think>``).

    UNVERIFIED: the paper's exact formula and weights were not read (methods.md has one sentence:
    penalise thinking-phase entropy, allow moderate answer-phase entropy); both weights are options.
    Entropies come from records (``meta.entropies`` with ``meta.think_tokens``, or ``meta.token_ids``
    and ``think_end_id``) when every record has them, else from ``signals.model`` scoring the two
    phases as continuations. No ``</think>``: the whole completion is thinking.
    """

    Options = PEAROptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"entropies", "continuations"})

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        phases = self._from_records(ctx) or self._from_model(ctx)
        value = np.array([-(o.think_coef * token_mean(t) + o.answer_coef * token_mean(a)) for t, a in phases])
        return np.where(ctx.is_correct, value, 0.0) if o.only_correct else value

    def _from_records(self, ctx: ShapingContext) -> list[tuple[np.ndarray, np.ndarray]] | None:
        metas = ctx.batch.metas
        if not all(m.get("entropies") is not None for m in metas):
            return None
        entropies = _signals(ctx).get("entropies")
        out = []
        for i, (m, ent) in enumerate(zip(metas, entropies)):
            k = m.get("think_tokens")
            if k is None:
                ids = m.get("token_ids")
                if ids is None or self.options.think_end_id is None:
                    raise SignalError(f"pear: record {i} gives meta.entropies but not where thinking ends: give "
                                      "meta.think_tokens, or meta.token_ids and the think_end_id option")
                if len(ids) != len(ent):
                    raise SignalError(f"pear: record {i} has {len(ids)} token ids and {len(ent)} entropies")
                k = ids.index(self.options.think_end_id) + 1 if self.options.think_end_id in ids else len(ids)
            out.append((ent[:int(k)], ent[int(k):]))
        return out

    def _from_model(self, ctx: ShapingContext) -> list[tuple[np.ndarray, np.ndarray]]:
        b = ctx.batch
        end = self.options.think_end
        splits = [(c[:c.index(end) + len(end)], c[c.index(end) + len(end):]) if end in c else (c, "") for c in b.completions]
        think = _signals(ctx).continuations([(p, t) for p, (t, _) in zip(b.prompts, splits)])
        answer = _signals(ctx).continuations([(p + t, a) for p, (t, a) in zip(b.prompts, splits)])
        return [(t[1], a[1]) for t, a in zip(think, answer)]


def _signals(ctx: ShapingContext):
    if ctx.signals is None:
        raise SignalError("this component needs the signals stage: score it through a Pipeline")
    return ctx.signals
