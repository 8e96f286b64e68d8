"""Turn-level rewards for multi-turn trajectories: ``carl`` and ``router_r1``.

A *turn* is an assistant message of a trajectory (a record with ``messages``,
docs/multiturn.md); a single-turn record is one turn. Per-turn values a component reads from
the environment come in the record's ``meta`` as one entry per assistant turn; per-turn rewards
go to the output's ``dense`` field with ``unit: turn``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..batch import ASSISTANT, TOOL
from ..records import RecordError
from ..registry import Options, register
from .base import Dense, Shaper, ShapingContext


def n_turns(ctx: ShapingContext, i: int) -> int | None:
    """Assistant turns of row ``i`` (None for a record without ``messages``)."""
    t = ctx.batch.trajectories
    return len(t.assistant(i)) if t is not None and t.has_messages(i) else None


def turn_values(ctx: ShapingContext, i: int, key: str, who: str) -> list[Any]:
    """``meta[key]`` of row ``i``: a list with one entry per assistant turn (any length for a record
    without ``messages``); a clear error naming the record and the field otherwise."""
    value = ctx.batch.metas[i].get(key)
    if not isinstance(value, list):
        raise RecordError(f"{who}: record {i} needs meta.{key}, a list with one entry per assistant turn")
    turns = n_turns(ctx, i)
    if turns is not None and len(value) != turns:
        raise RecordError(f"{who}: record {i} has {len(value)} meta.{key} entries for {turns} assistant turns")
    return value


def _unit_interval(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
        raise RecordError(f"{where} must be a number in [0, 1], got {x!r}"[:200])
    return float(x)


# --------------------------------------------------------------------------- carl
class CarlOptions(Options):
    coef: float = Field(default=1.0, description="weight of Σ_t r_t in the scalar reward")
    terminal_reward: float = Field(default=0.0, description="added on the turn of a terminating infraction (CaRL: 0)")
    terminal_hint: float = Field(
        default=1.0,
        ge=0.0,
        description="subtracted too when the infraction is a hinted one, e.g. a collision (CaRL: 1)",
    )
    progress_key: str = Field(default="turn_progress", description="meta key: progress made at each turn (>= 0)")
    penalties_key: str = Field(
        default="turn_penalties",
        description="meta key: each turn's soft penalties, a factor or {name: factor} in [0, 1]",
    )
    infraction_key: str = Field(
        default="infraction_turn", description="meta key: index of the turn with a terminating infraction (or null)"
    )
    hint_key: str = Field(
        default="infraction_hint", description="meta key: true when that infraction gets the termination hint"
    )


@register(
    "shaper",
    "carl",
    "CaRL: per-turn progress × product of soft penalty factors; a terminating infraction ends the reward",
    "CaRL: Learning Scalable Planning Policies with Simple Rewards (Jaeger et al. 2025)",
)
class Carl(Shaper):
    """r_t = progress_t · Π_k p_{k,t} (CaRL §3; official code autonomousvision/CaRL@5abef66
    ``team_code_roach/reward/simple_reward.py`` with ``rl_config.py``: route-completion progress times
    the soft penalty factors, each in [0, 1]). A terminating infraction at turn k ends the episode:
    turn k also gets ``terminal_reward`` (0), minus ``terminal_hint`` (1) when the environment marks
    it hinted (CaRL: collisions and red lights), and later turns nothing. Adds coef·Σ_t r_t; dense
    per turn.

    The environment supplies, per assistant turn, ``meta.turn_progress`` (progress increments, e.g.
    subgoals or tests newly passed as a fraction of all), ``meta.turn_penalties`` (a factor or
    ``{name: factor}``; 1 = no penalty; optional), and optionally ``meta.infraction_turn`` and
    ``meta.infraction_hint``.
    """

    Options = CarlOptions
    dense_unit: ClassVar[str | None] = "turn"

    def turn_rewards(self, ctx: ShapingContext, i: int) -> np.ndarray:
        o = self.options
        progress = turn_values(ctx, i, o.progress_key, self.name)
        prog = np.array(progress, dtype=np.float64) if progress else np.zeros(0)
        if prog.ndim != 1 or not np.isfinite(prog).all() or (prog < 0).any():
            raise RecordError(f"carl: record {i} meta.{o.progress_key} must be finite numbers >= 0")
        factors = np.ones(len(prog))
        if ctx.batch.metas[i].get(o.penalties_key) is not None:
            for t, p in enumerate(turn_values(ctx, i, o.penalties_key, self.name)):
                where = f"carl: record {i} meta.{o.penalties_key}[{t}]"
                items = p.items() if isinstance(p, dict) else [("", p)]
                factors[t] = math.prod(_unit_interval(v, f"{where}{'.' + k if k else ''}") for k, v in items)
        if len(factors) != len(prog):
            raise RecordError(f"carl: record {i} has {len(factors)} penalty entries for {len(prog)} progress entries")
        r = prog * factors
        k = ctx.batch.metas[i].get(o.infraction_key)
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(r):
                raise RecordError(f"carl: record {i} meta.{o.infraction_key} must be a turn index in [0, {len(r)})")
            r[k + 1 :] = 0.0
            r[k] += o.terminal_reward - (o.terminal_hint if ctx.batch.metas[i].get(o.hint_key) else 0.0)
        return r

    def term(self, ctx: ShapingContext) -> np.ndarray:
        rewards = [self.options.coef * self.turn_rewards(ctx, i) for i in range(len(ctx.batch))]
        ctx.dense[self.name] = Dense("turn", [r.tolist() for r in rewards])
        return np.array([r.sum() for r in rewards])


# --------------------------------------------------------------------------- router_r1
# Router-R1's price table, USD per million completion tokens (ulab-uiuc/Router-R1 route_service.py).
ROUTER_R1_PRICES: dict[str, float] = {
    "qwen/qwen2.5-7b-instruct": 0.3,
    "meta/llama-3.1-70b-instruct": 0.88,
    "meta/llama-3.1-8b-instruct": 0.18,
    "mistralai/mistral-7b-instruct-v0.3": 0.2,
    "mistralai/mixtral-8x22b-instruct-v0.1": 1.2,
    "google/gemma-2-27b-it": 0.8,
    "writer/palmyra-creative-122b": 1.8,
    "nvidia/llama3-chatqa-1.5-8b": 0.18,
}
_TAGS = ("search", "answer", "think", "information")
_ENCLOSED = re.compile(r"<(search|answer|think|information)>(.*?)</\1>", re.DOTALL)
_SEARCH = re.compile(r"<search>(.*?)</search>", re.DOTALL)


def _query(call: dict[str, Any]) -> str:
    """A routed call's query: its ``query`` argument, else its arguments as given."""
    args = call.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return args
    return str(args.get("query", json.dumps(args))) if isinstance(args, dict) else str(args)


def router_format_ok(text: str, models: set[str]) -> bool:
    """Router-R1's format check (official ``main_ppo.py`` ``format_reward``; every failure there is −1):
    balanced ``think/search/information/answer`` tags, no nesting, non-empty thinking, each search
    ``model: query`` with a known model and a real query, as many information blocks as searches, exactly
    one answer, starting with ``<think>`` and ending with ``</answer>``."""
    matches = _ENCLOSED.findall(text)
    if not matches or any(text.count(f"<{t}>") != text.count(f"</{t}>") for t in _TAGS):
        return False
    count = dict.fromkeys(_TAGS, 0)
    for tag, content in matches:
        content = content.strip()
        count[tag] += 1
        if any(f"<{t}>" in content or f"</{t}>" in content for t in _TAGS):
            return False  # nesting
        if tag == "think" and content in ("", "..."):
            return False
        if tag == "search":
            if content.count(":") != 1:
                return False
            model, query = (s.strip() for s in content.split(":"))
            low = content.lower()
            if not query or "llm-name" in low or "your-query" in low or model.lower() in query.lower():
                return False
            if model.lower() not in models:
                return False
    if count["answer"] != 1 or count["think"] == 0 or count["search"] != count["information"]:
        return False
    text = text.strip()
    return text.startswith("<think>") and text.endswith("</answer>")


class RouterR1Options(Options):
    cost_coef: float = Field(
        default=0.0, ge=0.0, le=1.0, description="α: weight of the cost reward (Router-R1 train.sh: 0; paper 0–0.1)"
    )
    prices: dict[str, float] = Field(
        default_factory=lambda: dict(ROUTER_R1_PRICES),
        description="USD per million completion tokens of each routable model (Router-R1's table by default)",
    )
    format_penalty: float = Field(default=-1.0, description="the reward of a malformed response (Router-R1: -1)")
    transform: Literal["sqrt", "log", "none"] = Field(
        default="sqrt", description="cost transform before normalising (Router-R1: sqrt)"
    )
    log_alpha: float = Field(default=0.01, gt=0.0, description="the log transform's log1p(α·cost) α (Router-R1: 0.01)")
    window: int = Field(default=1000, ge=1, description="rolling window of transformed costs (Router-R1: 1000)")
    quantiles: tuple[float, float] = Field(
        default=(0.05, 0.95), description="the window's percentiles that bound the normalisation (Router-R1: 5%, 95%)"
    )


@register(
    "shaper",
    "router_r1",
    "Router-R1: format gate (-1), outcome, and a cost reward from a price table per routed model call",
    "Router-R1: Teaching LLMs Multi-Round Routing and Aggregation via RL (Zhang et al. 2025)",
)
class RouterR1(Shaper):
    """Router-R1's reward (official ``qa_em.compute_score_em`` with ``main_ppo.py``), replacing the reward:

    - malformed (:func:`router_format_ok`) → ``format_penalty`` (−1);
    - else outcome s (the verifier's score: 1/0 for EM, partial for F1) = 0 or no answer → 0;
    - else (1 − α)·s + α·c, with c the cost reward below (so cost only matters for a right answer).

    Cost = Σ over routed calls of completion tokens × price per million tokens of the called model.
    c = 1 − clip((f(cost) − q_lo)/(q_hi − q_lo), 0, 1) with f = sqrt, q_lo/q_hi the 5th/95th
    percentiles of a rolling window of the last 1000 transformed costs (min/max with fewer than two;
    0.5 when q_hi − q_lo < 1e-8); each row's cost enters the window before it is normalised, in
    batch order. The window lives in the pipeline's State.

    The response checked is a single-turn completion as it is (Router-R1's own rollouts, with the
    ``<information>`` blocks inline), or a trajectory's assistant turns with each tool call written
    as Router-R1's ``<search>model: query</search>`` (the call's name is the model, its ``query``
    argument the query) and each tool result as ``<information>…</information>``. A call's tokens are
    its result's ``num_tokens``; ``meta.model_calls`` (``[{"model", "completion_tokens"}]``) gives the
    calls directly instead (needed for a single-turn completion that routes).
    """

    Options = RouterR1Options
    stateful: ClassVar[bool] = True

    def check_state(self, state: dict[str, Any]) -> None:
        window = state.get("window", [])
        if not isinstance(window, list) or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in window):
            raise ValueError("router_r1: state 'window' must be a list of finite numbers")

    def response(self, ctx: ShapingContext, i: int) -> str:
        t = ctx.batch.trajectories
        if t is None or not t.has_messages(i):
            return ctx.batch.completions[i]
        parts = []
        for k in range(*t.rows(i).indices(len(t.text))):
            if t.role[k] == ASSISTANT:
                parts.append(t.text[k] + "".join(f"<search>{c['name']}: {_query(c)}</search>" for c in t.tool_calls[k]))
            elif t.role[k] == TOOL:
                parts.append(f"\n\n<information>{t.text[k]}</information>\n\n")
        return "".join(parts)

    def calls(self, ctx: ShapingContext, i: int) -> list[tuple[str, float]]:
        """(model, completion tokens) of each routed call of row ``i``."""
        given = ctx.batch.metas[i].get("model_calls")
        if given is not None:
            out = []
            for j, c in enumerate(given if isinstance(given, list) else [None]):
                ok = isinstance(c, dict) and isinstance(c.get("model"), str)
                tokens = c.get("completion_tokens") if ok else None
                if not ok or isinstance(tokens, bool) or not isinstance(tokens, (int, float)) or tokens < 0:
                    raise RecordError(
                        f"router_r1: record {i} meta.model_calls[{j}] needs 'model' and 'completion_tokens'"
                    )
                out.append((c["model"], float(tokens)))
            return out
        t = ctx.batch.trajectories
        if t is None or not t.has_messages(i):
            if _SEARCH.search(ctx.batch.completions[i]):
                raise RecordError(
                    f"router_r1: record {i} routes calls in its text; give their tokens in meta.model_calls"
                )
            return []
        rows = range(*t.rows(i).indices(len(t.text)))
        models = [c["name"] for k in rows for c in t.tool_calls[k]]
        results = [k for k in rows if t.role[k] == TOOL]
        out = []
        for model, k in zip(models, results):  # each call's result, in order (records.validate_messages)
            if math.isnan(t.num_tokens[k]):
                raise RecordError(
                    f"router_r1: record {i} messages[{t.position[k]}] (the reply of {model!r}) has no num_tokens"
                )
            out.append((model, float(t.num_tokens[k])))
        return out

    def cost(self, calls: list[tuple[str, float]]) -> float:
        prices = {k.lower(): v for k, v in self.options.prices.items()}
        return sum(tokens * prices.get(model.lower(), 0.0) for model, tokens in calls)

    def normalise(self, cost: float, window: list[float]) -> float:
        """Router-R1's ``normalize_reward``: transform, append to the window, 1 − percentile-scaled value."""
        o = self.options
        r = (
            math.sqrt(cost)
            if o.transform == "sqrt"
            else math.log1p(o.log_alpha * cost)
            if o.transform == "log"
            else cost
        )
        window.append(r)
        del window[: max(0, len(window) - o.window)]
        arr = np.array(window)
        lo, hi = (np.percentile(arr, 100 * q) for q in o.quantiles) if len(arr) >= 2 else (arr.min(), arr.max())
        if hi - lo < 1e-8:
            return 0.5
        return 1.0 - float(np.clip((r - lo) / (hi - lo), 0.0, 1.0))

    def apply(self, ctx: ShapingContext) -> tuple[np.ndarray, np.ndarray]:
        o, bv = self.options, ctx.base_values
        models = {k.lower() for k in o.prices}
        window = list(ctx.state.get("window", []))
        spread = bv.correct - bv.wrong
        new = np.zeros(len(ctx.batch))
        value = np.zeros(len(ctx.batch))
        for i in range(len(ctx.batch)):
            value[i] = c = self.normalise(self.cost(self.calls(ctx, i)), window)
            s = (ctx.base[i] - bv.wrong) / spread if spread else 0.0
            if not router_format_ok(self.response(ctx, i), models):
                new[i] = o.format_penalty
            elif ctx.answered[i] and s > 0:
                new[i] = (1 - o.cost_coef) * s + o.cost_coef * c
        ctx.state["window"] = window
        return new, value
