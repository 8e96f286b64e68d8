"""Can a wrong answer tie or beat a correct one? A pure check of a spec's base values and shapers.

Length shapers add to (or replace) the correctness reward. With some coefficients and ``base``
values a short wrong answer earns as much as a long correct one inside a GRPO group — then
the advantage tells the policy that being right does not matter at that length. This module
scores synthetic groups (no verifier, no text work beyond what the shapers themselves do)
over a grid of lengths and group compositions and returns every pair where a wrong or
unanswered rollout scores at least as much as a correct one of the same group.

    >>> from rewardsmith.shaping.base import BaseValues
    >>> from rewardsmith.shaping.length import Kimi
    >>> findings = wrong_beats_correct(BaseValues(1.0, 0.0, 0.0), [("kimi", Kimi(coef=2.0))], "tokens")
    >>> f = findings[0]  # a short wrong answer: 0 + min(0, 2·0.5); the longest correct one: 1 + 2·(−0.5)
    >>> (f.wrong_reward, f.correct_reward)
    (0.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..batch import Batch
from .base import BaseValues, Shaper, ShapingContext

# A realistic upper length when no shaper names one (the spec's length unit).
DEFAULT_MAX_LENGTH = {"tokens": 4096.0, "words": 3072.0, "chars": 16384.0}
COMPOSITIONS = ("pair", "mostly_correct", "mostly_wrong")  # what fills the rest of an 8-rollout group
_GROUP_SIZE = 8
# Texts for shapers that read them (format, repetition): a reasoning block, and the answer in every marker.
_NO_ANSWER_TEXT = "<think>Adding the two parts gives the total.</think>\nI am not sure."
_WRONG_TEXT = _NO_ANSWER_TEXT.replace("I am not sure.", "\\boxed{7}\nAnswer: 7\n#### 7\n<answer>7</answer>")
_CORRECT_TEXT = _WRONG_TEXT.replace("7", "8")


@dataclass(frozen=True)
class Dominance:
    """A wrong (or unanswered) rollout that scores at least as much as a correct one in its group."""

    wrong_kind: str  # "wrong" (an answer, wrong) | "no_answer"
    wrong_length: float
    correct_length: float
    wrong_reward: float
    correct_reward: float
    composition: str  # see COMPOSITIONS
    history: bool  # scored after one batch of history (stateful shapers)

    def message(self, unit: str) -> str:
        after = " after one batch of history" if self.history else ""
        return (
            f"a {self.wrong_kind.replace('_', ' ')} rollout of {self.wrong_length:g} {unit} "
            f"scores {self.wrong_reward:.4g}, "
            f"not below a correct one of {self.correct_length:g} {unit} ({self.correct_reward:.4g}) in the same group "
            f"({self.composition}{after}): the shaping outweighs correctness"
        )


def max_length(shapers: Sequence[tuple[str, Shaper]], unit: str) -> float:
    """The longest realistic rollout: the tightest ``max_len`` budget of the shapers; else twice the
    largest ``target``/``upper``/``lower`` (at least the unit's default); else the default."""
    budgets = [
        float(s.options.max_len) for _, s in shapers if isinstance(getattr(s.options, "max_len", None), (int, float))
    ]
    if budgets:
        return min(budgets)
    scales = [
        float(getattr(s.options, k))
        for _, s in shapers
        for k in ("target", "upper", "lower")
        if isinstance(getattr(s.options, k, None), (int, float))
    ]
    default = DEFAULT_MAX_LENGTH.get(unit, DEFAULT_MAX_LENGTH["tokens"])
    return max([default, *(2 * x for x in scales)]) if scales else default


def length_grid(shapers: Sequence[tuple[str, Shaper]], hi: float) -> np.ndarray:
    """Lengths to try: 1, fractions of ``hi``, and each shaper's own thresholds (and one past them)."""
    points = {1.0, hi}
    points.update(hi * f for f in (0.125, 0.25, 0.5, 0.75))
    for _, s in shapers:
        o = s.options
        for key in ("target", "lower", "upper", "max_len"):
            v = getattr(o, key, None)
            if isinstance(v, (int, float)):
                points.update((float(v), float(v) + 1))
        buffer, top = getattr(o, "buffer", None), getattr(o, "max_len", None)
        if isinstance(buffer, (int, float)) and isinstance(top, (int, float)):
            points.update((top - buffer, top - buffer + 1))
        peak = getattr(o, "peak", None)
        if isinstance(peak, float) and isinstance(top, (int, float)):
            points.add(peak * top)
    return np.array(sorted({float(round(p)) for p in points if 1 <= round(p) <= hi}))


def _synthetic_groups(grid: np.ndarray) -> tuple[Batch, np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """One group per (wrong length, correct length, composition): a wrong and an unanswered rollout
    at the wrong length, a correct one at the correct length, and fillers at the median length."""
    mid = float(np.median(grid))
    kinds: list[str] = []
    lengths: list[float] = []
    pids: list[str] = []
    index: list[
        tuple[int, int, str]
    ] = []  # (wrong row, correct row, composition) per group; no-answer row = wrong row + 1
    for wl in grid:
        for cl in grid:
            for comp in COMPOSITIONS:
                g = f"g{len(index)}"
                start = len(kinds)
                rows = [("wrong", wl), ("no_answer", wl), ("correct", cl)]
                fill = _GROUP_SIZE - len(rows)
                if comp == "mostly_correct":
                    rows += [("correct", mid)] * fill
                elif comp == "mostly_wrong":
                    rows += [("wrong", mid)] * fill
                for kind, length in rows:
                    kinds.append(kind)
                    lengths.append(float(length))
                    pids.append(g)
                index.append((start, start + 2, comp))
    text = {"wrong": _WRONG_TEXT, "correct": _CORRECT_TEXT, "no_answer": _NO_ANSWER_TEXT}
    n = len(kinds)
    batch = Batch(
        prompt_ids=pids,
        prompts=[""] * n,
        completions=[text[k] for k in kinds],
        answers=["8"] * n,
        num_tokens=np.array(lengths),
        truncated=np.zeros(n, dtype=bool),
        data_sources=[None] * n,
        steps=np.zeros(n, dtype=np.int64),
        metas=[{} for _ in range(n)],
    )
    kind = np.array(kinds)
    return batch, kind, np.array(lengths), index


def _shape(
    shapers: Sequence[tuple[str, Shaper]],
    states: dict[str, dict],
    batch: Batch,
    kind: np.ndarray,
    length: np.ndarray,
    unit: str,
    base_values: BaseValues,
    step: int,
) -> np.ndarray:
    correct = np.where(kind == "correct", 1.0, 0.0)
    answered = kind != "no_answer"
    base = np.where(
        kind == "correct", base_values.correct, np.where(answered, base_values.wrong, base_values.no_answer)
    )
    reward = base.copy()
    format_ok = np.ones(len(kind), dtype=bool)
    for key, shaper in shapers:
        ctx = ShapingContext(
            batch,
            reward,
            base,
            correct,
            length,
            unit,
            answered,
            format_ok,
            step,
            base_values,
            states.setdefault(key, {}),
        )
        reward, _ = shaper.apply(ctx)
    return np.asarray(reward, dtype=np.float64)


def wrong_beats_correct(
    base_values: BaseValues, shapers: Sequence[tuple[str, Shaper]], unit: str, longest: float | None = None
) -> list[Dominance]:
    """Every (wrong length, correct length, composition) where a wrong or unanswered rollout scores at
    least as much as a correct one of its group, worst first (one per wrong kind and composition).

    Lengths range over [1, ``longest``] (default :func:`max_length`); stateful shapers are scored
    twice (fresh, then after one batch of history). Shapers that need per-record data the check
    cannot invent (e.g. ``meta.target_length``) make it return what it found before them: no error.
    """
    if base_values.wrong >= base_values.correct or base_values.no_answer >= base_values.correct:
        which = "wrong" if base_values.wrong >= base_values.correct else "no_answer"
        value = getattr(base_values, which)
        return [Dominance(which, 1.0, 1.0, value, base_values.correct, "base values", False)]
    if not shapers:
        return []
    hi = float(longest) if longest and longest >= 1 else max_length(shapers, unit)
    grid = length_grid(shapers, hi)
    batch, kind, length, index = _synthetic_groups(grid)
    states: dict[str, dict] = {}
    passes = 2 if any(getattr(s, "stateful", False) for _, s in shapers) else 1
    worst: dict[tuple[str, str], Dominance] = {}
    for step in range(passes):
        try:
            reward = _shape(shapers, states, batch, kind, length, unit, base_values, step)
        except (ValueError, KeyError, TypeError):
            break
        for wrong_row, correct_row, comp in index:
            for row, wk in ((wrong_row, "wrong"), (wrong_row + 1, "no_answer")):
                margin = reward[row] - reward[correct_row]
                if not math.isfinite(margin) or margin < 0:
                    continue
                best = worst.get((wk, comp))
                if best is None or margin > best.wrong_reward - best.correct_reward:
                    worst[(wk, comp)] = Dominance(
                        wk,
                        float(length[row]),
                        float(length[correct_row]),
                        float(reward[row]),
                        float(reward[correct_row]),
                        comp,
                        step > 0,
                    )
    return sorted(worst.values(), key=lambda d: d.correct_reward - d.wrong_reward)


COEFFICIENTS = ("coef", "alpha", "weight", "factor")  # the options that scale a shaper's term
SWEEP = (1.25, 1.5, 2.0, 3.0, 4.0, 8.0)


def option_headroom(
    base_values: BaseValues, shapers: Sequence[tuple[str, Shaper]], unit: str, longest: float | None = None
) -> list[str]:
    """For each shaper coefficient (``coef``, ``alpha``, ``weight``, ``factor``), how far it can grow
    (× 1.25 … 8, the others kept) before a wrong answer ties or beats a correct one — the option sweep
    of ``rewardsmith probe``. Nothing is said where the spec as given already lets one win."""
    if wrong_beats_correct(base_values, shapers, unit, longest):
        return []
    out = []
    for i, (key, shaper) in enumerate(shapers):
        for option in COEFFICIENTS:
            value = getattr(shaper.options, option, None)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                continue
            limit = None
            for factor in SWEEP:
                changed = type(shaper)(shaper.options.model_copy(update={option: value * factor}))
                if wrong_beats_correct(base_values, [*shapers[:i], (key, changed), *shapers[i + 1 :]], unit, longest):
                    limit = factor
                    break
            what = f"{key}.{option} = {value:g}: "
            if limit is None:
                top = SWEEP[-1]
                out.append(what + f"no wrong answer ties a correct one up to {value * top:g} (×{top:g})")
            else:
                out.append(what + f"a wrong answer ties or beats a correct one from {value * limit:g} (×{limit:g})")
    return out
