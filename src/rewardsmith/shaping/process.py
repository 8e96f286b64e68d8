"""Dense process rewards: ``implicit_prm`` (PRIME), ``prm_clip``, ``prm_delta``, ``renorm``, ``igpo``.

Each adds its per-unit rewards' sum to the reward and writes the per-unit rewards (token, step or
turn) to the output's ``dense`` field, where the pipeline puts the rest of the reward on the last
unit, so a row's dense rewards sum to its reward. Step rewards come from ``meta.step_rewards``
(one PRM score per reasoning step, e.g. from a process reward model run by the caller).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ..batch import Batch
from ..registry import Options, register
from ..signals import SignalError, token_mean
from .base import Dense, Shaper, ShapingContext


def rloo_token_rewards(rewards: list[np.ndarray], group: np.ndarray) -> list[np.ndarray]:
    """PRIME's leave-one-out per reward source (verl recipe/prime ``compute_rloo_advantage_return``):
    r ← r·n/(n−1) − Σ_j mean(r_j)/(n−1) over the n rollouts of a group; 0 for a group of one."""
    out = []
    means = np.array([token_mean(r) for r in rewards])
    for i, r in enumerate(rewards):
        members = np.flatnonzero(group == group[i])
        n = len(members)
        out.append(np.zeros_like(r) if n < 2 else r * n / (n - 1) - means[members].sum() / (n - 1))
    return out


def masked_whiten(rows: list[np.ndarray]) -> list[np.ndarray]:
    """Whiten over every token of the batch: (x − mean)/sqrt(var + 1e-8), Bessel-corrected var
    (verl's ``masked_whiten``)."""
    flat = np.concatenate(rows) if rows else np.zeros(0)
    if len(flat) < 2:
        return [np.zeros_like(r) for r in rows]
    mean, var = flat.mean(), flat.var(ddof=1)
    return [(r - mean) / np.sqrt(var + 1e-8) for r in rows]


def prime_advantages(
    process: list[np.ndarray], outcome: np.ndarray, group: np.ndarray, process_coef: float, outcome_coef: float
) -> list[np.ndarray]:
    """PRIME (Cui et al. 2025, §3.3; verl recipe/prime): leave-one-out per source (implicit token rewards,
    outcome on the last token) weighted and summed, reverse-cumsum returns, whitened over the batch."""
    proc = rloo_token_rewards(process, group)
    # the outcome sits on the last token only, so its per-row mean there is the outcome itself
    loo = [r[0] for r in rloo_token_rewards([np.array([o]) for o in outcome], group)]
    outc = [np.where(np.arange(len(p)) == len(p) - 1, o, 0.0) for p, o in zip(process, loo)]
    returns = [np.cumsum((process_coef * p + outcome_coef * o)[::-1])[::-1] for p, o in zip(proc, outc)]
    return masked_whiten(returns)


class ImplicitPRMOptions(Options):
    beta: float = Field(default=0.05, gt=0.0, description="β of r_t = β·log π/π_ref (PRIME: 0.05)")
    coef: float = Field(default=1.0, description="weight of Σ_t r_t in the scalar reward")
    process_coef: float = Field(
        default=5.0, ge=0.0, description="weight of the implicit rewards in the advantages (PRIME: 5)"
    )
    outcome_coef: float = Field(default=5.0, ge=0.0, description="weight of the outcome in the advantages (PRIME: 5)")


@register(
    "shaper",
    "implicit_prm",
    "PRIME implicit process reward β·log π/π_ref per token, with PRIME's leave-one-out advantages",
    "PRIME (Cui et al. 2025)",
)
class ImplicitPRM(Shaper):
    """r_t = β·(log π(y_t|y<t) − log π_ref(y_t|y<t)) per token (PRIME Eq. 3); adds coef·Σ_t r_t.

    ``token_logprobs`` is the implicit PRM π_φ (records' ``meta.token_logprobs`` or ``signals.model``),
    ``ref_token_logprobs`` its reference. Dense output: the per-token rewards and PRIME's advantages
    (:func:`prime_advantages`, the outcome = the verdict, unknown as 0), leave-one-out within the
    groups of the scored batch (score whole groups; the scalar reward does not depend on them).
    Training the implicit PRM itself (BCE on the outcome) is the trainer's job, not a reward's.
    """

    Options = ImplicitPRMOptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"token_logprobs", "ref_token_logprobs"})
    dense_unit: ClassVar[str | None] = "token"

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        lp, ref = ctx.require_signals().get("token_logprobs"), ctx.require_signals().get("ref_token_logprobs")
        for i, (a, b) in enumerate(zip(lp, ref)):
            if len(a) != len(b):
                raise SignalError(
                    f"implicit_prm: record {i} has {len(a)} token log-probs and {len(b)} reference log-probs"
                )
        rewards = [o.coef * o.beta * (a - b) for a, b in zip(lp, ref)]
        outcome = np.nan_to_num(ctx.correct, nan=0.0)
        adv = prime_advantages(
            [o.beta * (a - b) for a, b in zip(lp, ref)], outcome, ctx.group, o.process_coef, o.outcome_coef
        )
        ctx.dense[self.name] = Dense("token", [r.tolist() for r in rewards], [a.tolist() for a in adv])
        return np.array([r.sum() for r in rewards])


def step_rewards(ctx: ShapingContext, who: str, key: str = "step_rewards") -> list[np.ndarray]:
    """Each record's ``meta.step_rewards`` (or ``key``: finite floats); a clear error where one is missing.
    ``meta.turn_rewards`` of a trajectory must have one score per assistant turn."""
    out = []
    t = ctx.batch.trajectories
    for i, m in enumerate(ctx.batch.metas):
        value = m.get(key)
        try:
            arr = np.asarray(value if value is not None else [], dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.full((1, 1), np.nan)
        if value is None or arr.ndim != 1 or not np.isfinite(arr).all():
            unit = key.split("_")[0]
            raise SignalError(f"{who}: record {i} needs meta.{key}, a list of finite per-{unit} process scores")
        if key == "turn_rewards" and t is not None and t.has_messages(i) and len(arr) != len(t.assistant(i)):
            raise SignalError(
                f"{who}: record {i} has {len(arr)} meta.turn_rewards for {len(t.assistant(i))} assistant turns"
            )
        out.append(arr)
    return out


def clip_steps(r: np.ndarray, eta: float) -> np.ndarray:
    """Clip (Gao et al. 2024, §4): r_k ← min(r_k − η, 0), so the process return is at most 0."""
    return np.minimum(r - eta, 0.0)


def delta_steps(r: np.ndarray) -> np.ndarray:
    """Delta (Gao et al. 2024, §4): r_k ← r_k − r_{k+1} for k < K, last step 0; the return from step k is r_k − r_K."""
    return np.append(r[:-1] - r[1:], 0.0) if len(r) else r


class _StepShaper(Shaper):
    """Adds alpha·Σ_k r'_k of the transformed step rewards; dense per step."""

    dense_unit: ClassVar[str | None] = "step"

    def steps(self, r: np.ndarray, ctx: ShapingContext, i: int) -> np.ndarray:
        raise NotImplementedError

    def term(self, ctx: ShapingContext) -> np.ndarray:
        unit = self.dense_unit or "step"
        scores = step_rewards(ctx, self.name, f"{unit}_rewards")
        shaped = [self.options.alpha * self.steps(r, ctx, i) for i, r in enumerate(scores)]
        ctx.dense[self.name] = Dense(unit, [s.tolist() for s in shaped])
        return np.array([s.sum() for s in shaped])


class ClipOptions(Options):
    eta: float = Field(description="threshold η subtracted before clipping at 0 (no paper default verified: choose it)")
    alpha: float = Field(default=1.0, description="weight α of the process rewards")


@register(
    "shaper",
    "prm_clip",
    "process rewards clipped to min(r − η, 0): the return is bounded above (no step farming)",
    "On Designing Effective RL Reward at Training Time for LLM Reasoning (Gao et al. 2024)",
)
class PRMClip(_StepShaper):
    """r_k ← α·min(r_p(k) − η, 0) on ``meta.step_rewards``; more steps can only lower the reward [U: methods.md §3]."""

    Options = ClipOptions
    example_options: ClassVar[dict] = {"eta": 0.5}

    def steps(self, r: np.ndarray, ctx: ShapingContext, i: int) -> np.ndarray:
        return clip_steps(r, self.options.eta)


class DeltaOptions(Options):
    alpha: float = 1.0
    clip_eta: float | None = Field(default=None, description="apply Clip with this η first (Clip then Delta)")


@register(
    "shaper",
    "prm_delta",
    "process rewards as differences r_k − r_{k+1}: the return telescopes (no step farming)",
    "On Designing Effective RL Reward at Training Time for LLM Reasoning (Gao et al. 2024)",
)
class PRMDelta(_StepShaper):
    """r_k ← α·(r_p(k) − r_p(k+1)), last step 0 (optionally Clip first) on ``meta.step_rewards`` [U: methods.md §3]."""

    Options = DeltaOptions

    def steps(self, r: np.ndarray, ctx: ShapingContext, i: int) -> np.ndarray:
        return delta_steps(r if self.options.clip_eta is None else clip_steps(r, self.options.clip_eta))


class ReNormOptions(Options):
    alpha: float = 1.0
    unit: Literal["step", "turn"] = Field(
        default="step",
        description="step: meta.step_rewards (PRM steps); turn: meta.turn_rewards (one per assistant turn)",
    )


@register(
    "shaper",
    "renorm",
    "step scores re-centred on the outcome: r_p + r_o − 1 (correct in [0,1], failed in [−1,0])",
    "PPR / ReNorm (process rewards with outcome re-normalisation)",
)
class ReNorm(_StepShaper):
    """r̂_k = α·(r_p(k) + r_o − 1), r_o = 1 if correct else 0 (unknown as 0), step scores in [0, 1]
    [U: methods.md §3]. With ``unit: turn`` the process scores are a trajectory's per-turn scores
    (``meta.turn_rewards``, one per assistant turn) and the dense output is per turn."""

    Options = ReNormOptions

    @property
    def dense_unit(self) -> str:  # type: ignore[override]
        return self.options.unit

    def steps(self, r: np.ndarray, ctx: ShapingContext, i: int) -> np.ndarray:
        return r + (1.0 if ctx.correct[i] == 1.0 else 0.0) - 1.0


class IGPOOptions(Options):
    coef: float = Field(default=1.0, description="weight of Σ_t IG_t (= b_T − b_0) in the scalar reward")
    answer_prefix: str = Field(default="\nAnswer: ", description="text before the reference answer when it is scored")
    gamma: float = Field(
        default=1.0, ge=0.0, le=1.0, description="turn-level discount of the dense advantages (IGPO: 1)"
    )


@register(
    "shaper",
    "igpo",
    "information gain per turn: rise in the reference answer's mean log-prob after each turn",
    "IGPO (Wang et al. 2025)",
)
class InformationGain(Shaper):
    """IG_t = b_t − b_{t−1}, b_t = token-mean log P(answer | prompt, turns ≤ t) under ``signals.model`` (IGPO Eq. 4).

    Turns are the assistant messages of a conversational completion (joined by newlines); a
    plain completion is one turn. In a trajectory (``messages``) the history after turn t is every
    message up to the next assistant turn — the turn's tool calls *and their results*, which is where
    a search turn's information comes from (IGPO §3.2) — contents joined by newlines. Dense output per turn: IG_t (the last turn also carries the rest of
    the reward, the outcome), and IGPO's advantages: rewards z-scored jointly over the group's IG
    and outcome rewards (ε 1e-6; whole groups of the scored batch), then discounted returns over
    turns. A record without a reference answer gets no information gain (0).
    """

    Options = IGPOOptions
    needs_signals: ClassVar[frozenset[str]] = frozenset({"continuations"})
    dense_unit: ClassVar[str | None] = "turn"

    def term(self, ctx: ShapingContext) -> np.ndarray:
        b, o = ctx.batch, self.options
        gains: list[np.ndarray] = []
        for i, prompt in enumerate(b.prompts):
            turns = b.turns[i] or [b.completions[i]]
            if b.answers[i] is None:
                gains.append(np.zeros(len(turns)))
                continue
            histories = igpo_histories(b, i, prompt, turns)
            lps = ctx.require_signals().continuation_logprobs([(h + o.answer_prefix, b.answers[i]) for h in histories])
            belief = np.array([token_mean(lp) for lp in lps])
            gains.append(np.diff(belief))
        ig = np.array([g.sum() for g in gains])
        rewards = [o.coef * g for g in gains]
        outcome = ctx.reward  # what the turns lead to: the reward before this component
        ctx.dense[self.name] = Dense(
            "turn", [r.tolist() for r in rewards], igpo_advantages(rewards, outcome, ctx.group, o.gamma)
        )
        return o.coef * ig


def igpo_histories(batch: Batch, i: int, prompt: str, turns: list[str]) -> list[str]:
    """The T + 1 histories IGPO scores the answer after: before any turn, then after each turn."""
    t = batch.trajectories
    if t is not None and t.has_messages(i):
        return ["\n".join(m["content"] for m in t.history(i, upto)) for upto in range(len(turns) + 1)]
    return [prompt + "\n".join(turns[:k]) for k in range(len(turns) + 1)]


def igpo_advantages(
    rewards: list[np.ndarray], outcome: np.ndarray, group: np.ndarray, gamma: float
) -> list[list[float]]:
    """IGPO §3.3: z-score each group's turn rewards (IG on every turn, outcome added on the last) jointly, then
    discounted returns A_t = Σ_{k≥t} γ^{k−t} r̂_k."""
    out: list[list[float]] = [[] for _ in rewards]
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        pool = np.concatenate([np.append(rewards[i], outcome[i]) for i in rows])
        mean, std = pool.mean(), pool.std()
        for i in rows:
            z = (rewards[i] - mean) / (std + 1e-6)
            if len(z):
                z[-1] += (outcome[i] - mean) / (std + 1e-6)
            ret = np.zeros(len(z))
            acc = 0.0
            for t in range(len(z) - 1, -1, -1):
                acc = z[t] + gamma * acc
                ret[t] = acc
            out[i] = ret.tolist()
    return out
