"""LASER step rewards: ``laser`` (fixed target), ``laser_d`` (adaptive, difficulty-aware targets)
and ``laser_de`` (LASER-D plus exploration of long wrong answers).

From "Learn to Reason Efficiently with Adaptive Length-based Reward Shaping" (Liu et al. 2025,
§4-5). The paper's base score — correct 1, wrong with an answer −0.5, no answer −1 — is the
spec's ``base: {correct: 1, wrong: -0.5, no_answer: -1}``; format failures (``format:`` with
``mode: gate``) are never shaped, and with ``mode: add`` these shapers skip them themselves.
Rollouts without an answer are never length-shaped, as in the authors' code (only the scores
1.0 and −0.5 are); ``laser_de``'s ``shape_unanswered`` gives them the exploration bonus too.
Checked against hkust-nlp/Laser@c9e7c4e (``verl/utils/reward_score/length_penalty.py``,
``constants.py``).

Difficulty buckets are per group, by the share of correct rollouts: ≥ 2/3 easy, ≥ 1/3 medium,
else hard (an unknown verdict counts as not correct). ``laser_d``/``laser_de`` keep their
monitoring data and targets in the component state (see :class:`LaserD`).

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "exact", "length_unit": "words",
    ...                   "base": {"correct": 1, "wrong": -0.5, "no_answer": -1},
    ...                   "shaping": [{"name": "laser", "target": 3}]})
    >>> recs = [{"prompt_id": "q", "completion": c, "answer": "4"}
    ...         for c in ("Answer: 4", "so so so. Answer: 4", "Answer: 5")]
    >>> pipe.score(recs).total.tolist()
    [1.5, 1.0, -0.5]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, model_validator

from ..batch import group_reduce
from ..registry import Options, register
from ..state import check_int, check_number
from .base import Shaper, ShapingContext
from .repetition import repetition_penalty

EASY, MEDIUM, HARD = 0, 1, 2  # bucket indices; targets are stored in this order
LaserMode = Literal["reward", "penalty", "hybrid"]


def laser_step_reward(
    length: np.ndarray, target: np.ndarray | float, eligible: np.ndarray, alpha: float, mode: LaserMode = "reward"
) -> np.ndarray:
    """LASER's step length reward (Liu et al. 2025, §4.2, Eq. 4; ``length_penalty.py`` modes).

    For eligible (correct, well-formatted) rollouts: ``reward`` mode +α when L ≤ target;
    ``penalty`` mode −α when L > target; ``hybrid`` both. Others get 0.

    >>> import numpy as np
    >>> L, ok = np.array([5., 10., 15.]), np.array([True, True, False])
    >>> laser_step_reward(L, 8, ok, 0.5).tolist(), laser_step_reward(L, 8, ok, 0.5, "hybrid").tolist()
    ([0.5, 0.0, 0.0], [0.5, -0.5, 0.0])
    """
    within = length <= target
    if mode == "reward":
        return np.where(eligible & within, alpha, 0.0)
    if mode == "penalty":
        return np.where(eligible & ~within, -alpha, 0.0)
    return np.where(eligible, np.where(within, alpha, -alpha), 0.0)


def difficulty_buckets(correct: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group bucket (EASY/MEDIUM/HARD) from the share of correct rollouts: ≥ 2/3, ≥ 1/3, else.

    >>> import numpy as np
    >>> difficulty_buckets(np.array([1, 1, 0, 1, 0, 0, 0], bool), np.array([0, 0, 0, 1, 1, 1, 2]), 3).tolist()
    [0, 1, 2]
    """
    n_correct = np.bincount(group[correct], minlength=n_groups)
    size = np.bincount(group, minlength=n_groups)
    return np.where(3 * n_correct >= 2 * size, EASY, np.where(3 * n_correct >= size, MEDIUM, HARD))


def candidate_lengths(lower: float, upper: float, interval: float, anchor: float | None = 1024) -> np.ndarray:
    """LASER-D's candidate target lengths, as the authors' ``get_length_threshold``: ``lower,
    lower + interval, ...`` while below ``upper + interval`` (so the last is the first one
    >= ``upper``); when ``lower < anchor`` (the code: 1024 tokens) the list is ``lower`` followed
    by ``anchor, anchor + interval, ...``. ``anchor=None`` never jumps.

    >>> candidate_lengths(512, 4096, 1024).tolist(), candidate_lengths(1024, 3000, 1024).tolist()
    ([512.0, 1024.0, 2048.0, 3072.0, 4096.0], [1024.0, 2048.0, 3072.0])
    """
    start = lower if anchor is None or lower >= anchor else anchor
    steps = int(np.ceil((upper + interval - start) / interval - 1e-9))
    grid = start + interval * np.arange(max(steps, 0), dtype=np.float64)
    return grid if start == lower else np.concatenate(([float(lower)], grid))


def coverage_counts(length: np.ndarray, bucket: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: the number of rollouts (shape 3) and how many have L ≤ each candidate (3 × J)."""
    j = len(candidates)
    first = np.searchsorted(candidates, length, side="left")  # L <= candidates[c] iff first <= c
    hist = np.bincount(bucket * (j + 1) + first, minlength=3 * (j + 1)).reshape(3, j + 1)
    return hist.sum(axis=1), np.cumsum(hist, axis=1)[:, :j]


def bucket_sizes(group_size: int) -> np.ndarray:
    """LASER-D's k per bucket from the group size n: (⌊2n/3⌋, ⌊n/3⌋, 1) — (5, 2, 1) for n = 8 as in
    the official code; the paper's text gives (6, 3, 1) for n = 8 (pass ``k`` to use those)."""
    return np.array([2 * group_size // 3, group_size // 3, 1])


def choose_targets(
    total: np.ndarray,
    covered: np.ndarray,
    k: np.ndarray,
    candidates: np.ndarray,
    expected_correct: int,
    fallback: float,
) -> np.ndarray:
    """LASER-D's adaptive targets (Liu et al. 2025, §5.1): per bucket, the smallest candidate l
    whose expected correct responses ECR(l) = ⌊coverage(l)·k⌋ reach ``expected_correct``;
    ``fallback`` where none does or the bucket has no data. Exact integer arithmetic:
    ⌊covered/total·k⌋ ≥ e ⟺ covered·k ≥ e·total for integer e.

    >>> import numpy as np
    >>> cands = np.array([100., 200., 300.])
    >>> total, covered = np.array([10, 10, 0]), np.array([[2, 6, 10], [2, 6, 9], [0, 0, 0]])
    >>> choose_targets(total, covered, np.array([5, 2, 1]), cands, 1, 400.).tolist()
    [100.0, 200.0, 400.0]
    """
    ok = (covered * k[:, None] >= expected_correct * total[:, None]) & (total[:, None] > 0)
    return np.where(ok.any(axis=1), candidates[np.argmax(ok, axis=1)], fallback)


class LaserOptions(Options):
    target: float = Field(..., gt=0, description="target length L_T (the paper's scripts: 2048, 4096, 8192 tokens)")
    alpha: float = Field(default=0.5, ge=0, description="size of the step reward")
    mode: LaserMode = Field(
        default="reward", description="reward: +α when L <= target; penalty: −α when L > target; hybrid: both"
    )


@register(
    "shaper",
    "laser",
    "LASER step reward: correct rollouts get +α when L <= target (modes reward | penalty | hybrid).",
    "LASER (Liu et al., 2025)",
)
class Laser(Shaper):
    Options = LaserOptions
    example_options = {"target": 200}

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        return laser_step_reward(ctx.length, o.target, ctx.is_correct & ctx.format_ok, o.alpha, o.mode)


class LaserDOptions(Options):
    alpha: float = Field(default=0.5, ge=0, description="size of the step reward")
    lower: float = Field(..., gt=0, description="smallest candidate target length")
    upper: float = Field(
        ..., gt=0, description="largest candidate target length; the target of every bucket before any data"
    )
    interval: float = Field(..., gt=0, description="spacing of the candidate target lengths (the paper: 1024 tokens)")
    update_every: int = Field(
        default=20, ge=1, description="re-choose the targets every this many steps (the paper's monitor_freq)"
    )
    expected_correct: int = Field(default=1, ge=1, description="ECR a target must reach")
    window: int | None = Field(
        default=None, ge=1, description="steps of scored rollouts kept as monitoring data; None: update_every"
    )
    anchor: float | None = Field(
        default=1024,
        gt=0,
        description="when lower < anchor the candidates are lower, anchor, anchor+interval, ... (the authors' code: 1024 tokens); "
        "None: lower, lower+interval, ... — a change from earlier versions, which spaced them evenly from lower and ended at upper",
    )
    k: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt] | None = Field(
        default=None,
        description="k per bucket (easy, medium, hard); None: (⌊2n/3⌋, ⌊n/3⌋, 1) from the mean group size n (the code's 5,2,1 for n=8; the paper says 6,3,1)",
    )

    @model_validator(mode="after")
    def _range(self) -> LaserDOptions:
        if self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) must not exceed upper ({self.upper})")
        return self


@register(
    "shaper",
    "laser_d",
    "LASER-D: LASER step reward with per-difficulty targets re-chosen from recent rollouts (stateful).",
    "LASER (Liu et al., 2025)",
)
class LaserD(Shaper):
    """LASER-D (Liu et al. 2025, §5): correct rollouts with L ≤ L_A[bucket] get +α.

    Targets: before any data every bucket's L_A is ``upper``. After each batch its rollouts'
    lengths are added to the monitoring data (per step and bucket, counts of rollouts with
    L ≤ each candidate; the last ``window`` steps are kept; groups without a known verdict are
    left out), and the targets are re-chosen (:func:`choose_targets`) after the first batch with
    data and then every ``update_every`` steps. A batch is always scored with the targets chosen
    *before* it. The paper monitors a held-out set of 8 rollouts per question; here the recent
    training rollouts serve as monitoring data. Its code buckets the monitoring set with
    acc ≤ 1/3 / ≤ 2/3 / > 2/3 and the rewards with ≥ 2/3 / ≥ 1/3; both use the latter here.

    State (JSON): ``targets`` [easy, medium, hard], ``updated_at`` (step), ``history``
    [{step, rows, groups, total[3], covered[3][J]}].
    """

    group_aware = True

    Options = LaserDOptions
    example_options = {"lower": 50, "upper": 300, "interval": 50, "anchor": None}  # evenly spaced at this scale
    stateful = True

    def check_state(self, state: dict[str, Any]) -> None:
        o = self.options
        candidates = candidate_lengths(o.lower, o.upper, o.interval, o.anchor)
        n_candidates = len(candidates)
        targets = state.get("targets", [o.upper] * 3)
        if not isinstance(targets, list) or len(targets) != 3:
            raise ValueError(f"targets: must be a list of 3 lengths, got {targets!r}"[:200])
        for i, t in enumerate(targets):
            check_number(t, f"targets[{i}]", 0.0, max(o.upper, float(candidates[-1])))
        if state.get("updated_at") is not None:
            check_int(state["updated_at"], "updated_at")
        history = state.get("history", [])
        if not isinstance(history, list):
            raise ValueError(f"history: must be a list, got {type(history).__name__}")
        for j, h in enumerate(history):
            where = f"history[{j}]"
            if not isinstance(h, dict) or set(h) != {"step", "rows", "groups", "total", "covered"}:
                raise ValueError(f"{where}: must be an object with step, rows, groups, total, covered")
            check_int(h["step"], f"{where}.step")
            groups = check_int(h["groups"], f"{where}.groups", 1)
            check_int(h["rows"], f"{where}.rows", groups)
            total, covered = h["total"], h["covered"]
            if not (isinstance(total, list) and len(total) == 3 and isinstance(covered, list) and len(covered) == 3):
                raise ValueError(f"{where}: total and covered must have one entry per bucket (3)")
            for b in range(3):
                n = check_int(total[b], f"{where}.total[{b}]", 0, h["rows"])
                if not isinstance(covered[b], list) or len(covered[b]) != n_candidates:
                    raise ValueError(
                        f"{where}.covered[{b}]: must hold {n_candidates} counts (one per candidate length)"
                    )
                for c, count in enumerate(covered[b]):
                    check_int(count, f"{where}.covered[{b}][{c}]", 0, n)

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o = self.options
        targets = np.asarray(ctx.state.get("targets", [o.upper] * 3), dtype=np.float64)
        bucket = difficulty_buckets(ctx.is_correct, ctx.group, ctx.n_groups)
        target = targets[bucket][ctx.group]
        term = laser_step_reward(ctx.length, target, ctx.is_correct & ctx.format_ok, o.alpha) + self.exploration(
            ctx, target
        )
        self._monitor(ctx, bucket)
        return term

    def exploration(self, ctx: ShapingContext, target: np.ndarray) -> np.ndarray | float:
        return 0.0

    def _monitor(self, ctx: ShapingContext, bucket: np.ndarray) -> None:
        o = self.options
        candidates = candidate_lengths(o.lower, o.upper, o.interval, o.anchor)
        known = group_reduce(~np.isnan(ctx.correct), ctx.group, ctx.n_groups, "sum") > 0
        rows = known[ctx.group]
        history: list[dict[str, Any]] = ctx.state.setdefault("history", [])
        if rows.any():
            total, covered = coverage_counts(ctx.length[rows], bucket[ctx.group][rows], candidates)
            entry = next((h for h in history if h["step"] == ctx.step), None)
            if entry is None:
                entry = {
                    "step": ctx.step,
                    "rows": 0,
                    "groups": 0,
                    "total": [0, 0, 0],
                    "covered": np.zeros_like(covered).tolist(),
                }
                history.append(entry)
            entry["rows"] += int(rows.sum())
            entry["groups"] += int(known.sum())
            entry["total"] = (np.asarray(entry["total"]) + total).tolist()
            entry["covered"] = (np.asarray(entry["covered"]) + covered).tolist()
        window = o.window or o.update_every
        history[:] = sorted((h for h in history if ctx.step - window < h["step"] <= ctx.step), key=lambda h: h["step"])
        updated_at = ctx.state.get("updated_at")
        if history and (updated_at is None or ctx.step - updated_at >= o.update_every):
            total = np.sum([h["total"] for h in history], axis=0)
            covered = np.sum([h["covered"] for h in history], axis=0)
            group_size = round(sum(h["rows"] for h in history) / sum(h["groups"] for h in history))
            k = np.array(o.k) if o.k is not None else bucket_sizes(group_size)
            ctx.state["targets"] = choose_targets(total, covered, k, candidates, o.expected_correct, o.upper).tolist()
            ctx.state["updated_at"] = ctx.step


class LaserDEOptions(LaserDOptions):
    shape_unanswered: bool = Field(
        default=False,
        description="also give the exploration bonus to long wrong rollouts without an answer (the authors' code: never)",
    )
    repetition_ngram: int = Field(
        default=4, ge=1, description="n-gram size of the repetition check (the paper's code: 4)"
    )
    repetition_threshold: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="a rollout whose share of repeated n-grams is >= this is repetitive [unverified]",
    )


@register(
    "shaper",
    "laser_de",
    "LASER-DE: LASER-D plus +α for non-repetitive wrong rollouts longer than the target (exploration; stateful).",
    "LASER (Liu et al., 2025)",
)
class LaserDE(LaserD):
    """LASER-DE (Liu et al. 2025, §5.2): LASER-D, and wrong rollouts with an answer that are
    longer than L_A get +α (explore), unless they repeat themselves. Repetition: share of
    repeated n-grams (:func:`rewardsmith.shaping.repetition.repetition_penalty`, over
    ``meta.token_ids`` where given, else words) ≥ ``repetition_threshold`` — a stand-in for the
    official code's reverse n-gram scan, with the threshold a parameter [unverified]."""

    needs_tokens = True

    Options = LaserDEOptions

    def exploration(self, ctx: ShapingContext, target: np.ndarray) -> np.ndarray:
        o = self.options
        wrong = ctx.is_wrong if o.shape_unanswered else ctx.is_wrong & ctx.answered
        candidates = wrong & ctx.format_ok & (ctx.length > target)
        out = np.zeros(len(ctx.length))
        for i in np.flatnonzero(candidates):  # text work only for the rows that need it
            ids = ctx.batch.token_ids[i]
            units = list(ids) if ids is not None else ctx.batch.completions[i].split()  # the same words as \S+, faster
            if -repetition_penalty(units, o.repetition_ngram, -1.0) < o.repetition_threshold:
                out[i] = o.alpha
        return out
