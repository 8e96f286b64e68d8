"""``tool_call``: ToolRL's rule-based reward for tool calls, R = R_format + R_correct.

ToolRL (Qian et al., 2025, §3.3 "Reward Design"; official code ``rlla.py``):

- ``R_format`` ∈ {0, 1}: 1 when the completion has ToolRL's layout for what the reference
  contains: ``<think>…</think>`` then ``\\n<tool_call>\\n…\\n</tool_call>`` (exactly one block)
  and/or ``\\n<response>…</response>`` (exactly one), nothing before or after.
- ``R_correct`` ∈ [min, max] = [−3, 3]: −3 when the predicted calls cannot be parsed; +3 on
  an exact match (same calls in the same order); otherwise
  ``score = J(names_gt, names_pred) + Σ_gt [J(keys_gt, keys_pred) + #{k: value_pred[k] = value_gt[k]}]``
  for each reference call and its best-scoring unused predicted call of the same name,
  ``S_max = 1 + Σ_gt (1 + |params_gt|)`` and ``R_correct = (max − min)·score/S_max + min``.
  J is the multiset Jaccard (1 when the lists are equal, 0 when one side is empty). A
  reference without tool calls gives ``R_correct = 0`` (as in the official code).

A :class:`Verdict` score must lie in [0, 1], so ``score = (R − lo)/(hi − lo)`` with
``lo = correct_min + format_min`` and ``hi = correct_max + format_max`` (over the whole schedule
when there is one, below); the raw R is in ``detail`` (``toolrl_reward=…``). The map is linear,
so ``base: {correct: hi, wrong: lo, no_answer: lo}`` in a spec turns the pipeline's correctness
reward back into ToolRL's raw R (defaults: 4 and −3). ``correct`` is true only for an exact
match with the right format.

``format_min`` is R_format for a wrong layout (ToolRL: 0). ``schedule_steps`` turns on ToolRL's
dynamic scaling (``SCHEDULEREWARD=1``; checked against qiancheng0/ToolRL@8cee13e
``verl/utils/reward_score/rlla.py``): at training step t, with T = ``schedule_steps`` (150),
the format bounds move from (max 2, min −2) towards (``format_max``, ``format_min``) and stop at
1 and −1 — so the format floor goes from −2 to −1 — while the correctness bounds move from ±2
towards (``correct_max``, ``correct_min``) and stop at ±3:
``f_max = max(1, 2 − (2 − format_max)·t/T)``, ``f_min = min(−1, −2 + (2 + format_min)·t/T)``,
``c_max = min(3, 2 + (correct_max − 2)·t/T)``, ``c_min = max(−3, −2 + (correct_min + 2)·t/T)``.
The step is the record's ``step`` (the pipeline passes it as ``meta.step``).

Accepted predicted calls, inside ``<tool_call>…</tool_call>`` (several blocks are read in
order): a JSON list of calls, one JSON object, or one JSON object per line (ToolRL's own
layout). A call is ``{"name": str, "parameters": {...}}``; ``"arguments"`` is accepted for
``"parameters"`` (also as a JSON-encoded string) and OpenAI's ``{"function": {...}}`` wrapper
is unwrapped. The reference is ``meta.tool_calls`` (a list, an object or such JSON text) or
else the record's ``answer`` (the same JSON, or a ToolRL target text with ``<tool_call>``
blocks, whose ``<response>`` block also makes a response part of the expected format).

In a trajectory (a record with ``messages``) the calls are scored **per call**: every call the
assistant turns make (their ``tool_calls``, then any ``<tool_call>`` blocks in their content, in
order) is matched with the reference call at the same position, R_k = R_correct([gold_k], [pred_k])
(ToolRL's formula on one call; an unparseable call, a call past the reference's end, and a
reference call never made each get ``correct_min``). The calls' rewards are aggregated by
``aggregate``: ``mean`` (default) or ``min`` over the max(#made, #reference) positions, mapped to
[0, 1] by (R − correct_min)/(correct_max − correct_min); ``sum`` maps Σ_k R_k by the reference's
count, (Σ − n·correct_min)/(n·(correct_max − correct_min)), clipped, so each call beyond the
reference costs. A trajectory that needs no call (empty reference) and makes none scores 1. The
per-call rewards are in ``detail`` (``per_call=[…]``); the layout (format) of each turn is the
spec's ``format`` component's job. ``correct`` is true only when every call matches exactly.

    >>> from rewardsmith.verifiers.tool_call import ToolCallVerifier
    >>> v = ToolCallVerifier()
    >>> gold = '[{"name": "weather", "parameters": {"city": "Paris"}}]'
    >>> done = '<think>look it up</think>\\n<tool_call>\\n{"name": "weather", "arguments": {"city": "Paris"}}\\n</tool_call>'
    >>> v.check(v.job(done, gold, {})).score
    1.0
    >>> v.check(v.job("<think>hm</think>\\n<tool_call>\\nnot json\\n</tool_call>", gold, {})).detail
    'toolrl_reward=-2 (format 1, correct -3): predicted calls not parseable: not JSON: ...'
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier

if TYPE_CHECKING:
    from ..batch import Batch

_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
# ToolRL's layouts (the whole stripped completion), chosen by what the reference contains.
_LAYOUT = {
    (True, False): re.compile(r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>", re.DOTALL),
    (False, True): re.compile(r"<think>.*?</think>\n<response>.*?</response>", re.DOTALL),
    (True, True): re.compile(
        r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>\n<response>.*?</response>", re.DOTALL
    ),
    (False, False): re.compile(r"<think>.*?</think>", re.DOTALL),
}

Call = dict[str, Any]  # {"name": str, "parameters": dict}


class ToolCallError(ValueError):
    """Tool calls that cannot be read."""


def normalise_call(obj: Any) -> Call:
    """``{"name", "parameters"}`` from one call object (``arguments`` and OpenAI's wrapper accepted)."""
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict) and "name" not in obj:
        obj = obj["function"]
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise ToolCallError(f"a call needs a string 'name': {str(obj)[:80]}")
    params = obj.get("parameters", obj.get("arguments", {}))
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ToolCallError(f"arguments of {obj['name']!r} are not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ToolCallError(f"parameters of {obj['name']!r} must be an object")
    return {"name": obj["name"], "parameters": params}


def parse_calls_json(text: str) -> list[Call]:
    """Calls from JSON text: a list, one object, or one object per line."""
    text = text.strip()
    if not text:
        raise ToolCallError("empty tool call")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ToolCallError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ToolCallError("JSON nested too deeply") from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ToolCallError("empty list of calls")
    return [normalise_call(item) for item in items]


def parse_predicted_calls(completion: str) -> list[Call]:
    """All calls in the completion's ``<tool_call>`` blocks, in order."""
    blocks = _BLOCK.findall(completion)
    if not blocks:
        raise ToolCallError("no <tool_call>...</tool_call> block")
    return [call for block in blocks for call in parse_calls_json(block)]


def parse_reference_calls(value: Any) -> list[Call]:
    """Reference calls from ``meta.tool_calls`` or ``answer``: objects, JSON, a Python repr
    (how a non-string ``answer`` reaches a verifier) or ToolRL target text."""
    if isinstance(value, str):
        text = value.strip()
        if "<tool_call>" in text:
            return parse_predicted_calls(text)
        if "<response>" in text and not text.startswith(("[", "{")):
            return []  # a response-only target: no calls expected
        try:
            return parse_calls_json(text)
        except ToolCallError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                raise ToolCallError(f"reference tool calls not readable: {text[:80]!r}") from None
    items = value if isinstance(value, list) else [value]
    return [normalise_call(item) for item in items]


def multiset_jaccard(a: list[Any], b: list[Any]) -> float:
    """ToolRL's match score: 1 if the lists are equal, 0 if either is empty, else
    |a ∩ b| / (|a| + |b| − |a ∩ b|) counting repeats."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ca, cb = Counter(map(_hashable, a)), Counter(map(_hashable, b))
    inter = sum((ca & cb).values())
    return inter / (len(a) + len(b) - inter)


def _hashable(x: Any) -> Any:
    return json.dumps(x, sort_keys=True, default=str) if isinstance(x, (dict, list)) else x


def toolrl_match_score(gold: list[Call], pred: list[Call]) -> tuple[float, float]:
    """``(score, S_max)`` of ToolRL's partial match (greedy, reference calls in order)."""
    score = multiset_jaccard([c["name"] for c in gold], [c["name"] for c in pred])
    s_max = 1.0
    used: set[int] = set()
    for g in gold:
        gp = g["parameters"]
        s_max += 1.0 + len(gp)
        best, best_i = 0.0, -1
        for i, p in enumerate(pred):
            if i in used or p["name"] != g["name"]:
                continue
            pp = p["parameters"]
            s = multiset_jaccard(list(gp), list(pp)) + sum(1.0 for k, v in gp.items() if k in pp and pp[k] == v)
            if s > best:
                best, best_i = s, i
        if best_i >= 0:
            used.add(best_i)
            score += best
    return score, s_max


def toolrl_correctness(gold: list[Call], pred: list[Call] | None, lo: float, hi: float) -> float:
    """R_correct: ``lo`` if unparseable (None), ``hi`` on exact match, else the scaled partial score."""
    if not gold:
        return 0.0
    if pred is None:
        return lo
    if pred == gold:
        return hi
    score, s_max = toolrl_match_score(gold, pred)
    return (hi - lo) * score / s_max + lo


def toolrl_format_ok(completion: str, expect_call: bool, expect_response: bool) -> bool:
    """ToolRL's layout check for the whole (stripped) completion."""
    text = completion.strip()
    if expect_call and (text.count("<tool_call>") != 1 or text.count("</tool_call>") != 1):
        return False
    if expect_response and (text.count("<response>") != 1 or text.count("</response>") != 1):
        return False
    return _LAYOUT[(expect_call, expect_response)].fullmatch(text) is not None


def trajectory_calls(batch: Batch, i: int) -> list[Call | None]:
    """Every call of row ``i``'s assistant turns, in order (structured ``tool_calls``, then the content's
    ``<tool_call>`` blocks); None for a call that cannot be read."""
    t = batch.trajectories
    assert t is not None
    out: list[Call | None] = []
    for k in t.assistant(i):
        for call in t.tool_calls[k]:
            try:
                out.append(normalise_call(call))
            except ToolCallError:
                out.append(None)
        for block in _BLOCK.findall(t.text[k]):
            try:
                out.extend(parse_calls_json(block))
            except ToolCallError:
                out.append(None)
    return out


def per_call_verdict(gold: list[Call], pred: list[Any], lo: float, hi: float, aggregate: str) -> Verdict:
    """The per-call score of a trajectory (module docstring)."""
    n = max(len(gold), len(pred))
    if n == 0:
        return Verdict(1.0, OK, "per_call=[] (no call expected, none made)")
    values = [
        toolrl_correctness([gold[k]], [pred[k]], lo, hi) if k < len(gold) and k < len(pred) and pred[k] else lo
        for k in range(n)
    ]
    if aggregate == "sum":
        m = max(1, len(gold))
        score = (sum(values) - m * lo) / (m * (hi - lo))
    else:
        score = ((min(values) if aggregate == "min" else sum(values) / n) - lo) / (hi - lo)
    detail = f"per_call=[{', '.join(f'{v:.6g}' for v in values)}] ({aggregate})"
    return Verdict(min(1.0, max(0.0, score)), OK, detail)


class ToolCallOptions(Options):
    aggregate: Literal["mean", "min", "sum"] = Field(
        default="mean", description="how a trajectory's per-call rewards combine (module docstring)"
    )
    correct_max: float = Field(default=3.0, description="R_correct on an exact match (ToolRL: 3)")
    correct_min: float = Field(default=-3.0, description="R_correct when the calls cannot be parsed (ToolRL: -3)")
    format_max: float = Field(
        default=1.0, ge=0.0, description="R_format for ToolRL's layout (0 turns the format term off)"
    )
    format_min: float = Field(default=0.0, le=0.0, description="R_format for any other layout (ToolRL: 0)")
    schedule_steps: int | None = Field(
        default=None,
        ge=1,
        description="ToolRL's dynamic scaling over this many steps (ToolRL: 150): format bounds "
        "from ±2 to (format_max >= 1, format_min <= -1 floors), correctness bounds from ±2 to ±3 caps; None: fixed bounds",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ToolCallOptions:
        if self.correct_max <= self.correct_min:
            raise ValueError("correct_max must be greater than correct_min")
        if self.schedule_steps is not None and not (
            self.format_max <= 2 and self.format_min >= -2 and self.correct_max >= 2 and self.correct_min <= -2
        ):
            raise ValueError(
                "schedule_steps moves the bounds from ±2: it needs format_max <= 2, format_min >= -2, correct_max >= 2, correct_min <= -2"
            )
        return self

    def bounds(self, step: float) -> tuple[float, float, float, float]:
        """(format_max, format_min, correct_max, correct_min) at ``step`` (fixed without a schedule)."""
        if self.schedule_steps is None:
            return self.format_max, self.format_min, self.correct_max, self.correct_min
        p = max(0.0, step) / self.schedule_steps
        return (
            max(1.0, 2 - (2 - self.format_max) * p),
            min(-1.0, -2 + (2 + self.format_min) * p),
            min(3.0, 2 + (self.correct_max - 2) * p),
            max(-3.0, -2 + (self.correct_min + 2) * p),
        )

    def envelope(self) -> tuple[float, float]:
        """(lo, hi): the least and greatest raw reward over every step — the [0, 1] map's ends.
        Each bound is linear in the step until it stops, so the extremes lie at step 0, at a
        bound's stopping step, or after all have stopped."""
        if self.schedule_steps is None:
            return self.correct_min + self.format_min, self.correct_max + self.format_max
        T = self.schedule_steps
        stops = [0.0]
        for start, target, stop in (
            (2, self.format_max, 1.0),
            (-2, self.format_min, -1.0),
            (2, self.correct_max, 3.0),
            (-2, self.correct_min, -3.0),
        ):
            if target != start:
                stops.append(T * (stop - start) / (target - start))
        sums = [(b[0] + b[2], b[1] + b[3]) for b in (self.bounds(t) for t in stops if t >= 0)]
        return min(lo for _, lo in sums), max(hi for hi, _ in sums)


@register(
    "verifier",
    "tool_call",
    "ToolRL tool-call reward: format (0/1) + name/parameter matching in [-3, 3], mapped to [0, 1].",
    "ToolRL (Qian et al., 2025)",
)
class ToolCallVerifier(Verifier):
    """Reads everything from the completion (format and calls), so every record is scored."""

    Options = ToolCallOptions
    isolate = False  # json parsing and anchored, count-checked regexes: bounded work

    @property
    def step_scheduled(self) -> bool:  # the pipeline passes the training step in meta.step
        return self.options.schedule_steps is not None

    def job_for(self, batch: Batch, i: int, extra: dict[str, Any] | None = None) -> Job | None:
        job = super().job_for(batch, i, extra)
        t = batch.trajectories
        if job is None or t is None or not t.has_messages(i):
            return job
        return Job(job.prediction, job.reference, {**job.meta, "trajectory_calls": trajectory_calls(batch, i)})

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        gold = meta.get("tool_calls", reference)
        if gold is not None and not isinstance(gold, str):
            gold = json.dumps(gold)
        expect_response = bool(meta.get("expect_response")) or "<response>" in (reference or "")
        extra = {"step": meta["step"]} if self.step_scheduled and "step" in meta else {}
        return Job(completion, gold, {"expect_response": expect_response, **extra})

    def check(self, job: Job) -> Verdict:
        o = self.options
        if job.reference is None:
            return Verdict(float("nan"), BAD_REFERENCE, "no reference tool calls (meta.tool_calls or answer)")
        try:
            gold = parse_reference_calls(job.reference)
        except ToolCallError as exc:
            return Verdict(float("nan"), BAD_REFERENCE, str(exc))
        try:
            pred, why = parse_predicted_calls(job.prediction), ""
        except ToolCallError as exc:
            pred, why = None, f": predicted calls not parseable: {exc}"
        expect_response = bool((job.meta or {}).get("expect_response"))
        f_max, f_min, c_max, c_min = o.bounds(float((job.meta or {}).get("step", 0)))
        if "trajectory_calls" in (job.meta or {}):
            return per_call_verdict(gold, job.meta["trajectory_calls"], c_min, c_max, o.aggregate)
        r_format = f_max if toolrl_format_ok(job.prediction, bool(gold), expect_response) else f_min
        r_correct = toolrl_correctness(gold, pred, c_min, c_max)
        reward = r_format + r_correct
        lo, hi = o.envelope()
        score = min(1.0, max(0.0, (reward - lo) / (hi - lo)))
        return Verdict(score, OK, f"toolrl_reward={reward:.6g} (format {r_format:g}, correct {r_correct:.6g}){why}")
