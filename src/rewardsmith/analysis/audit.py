"""Reward-hacking audit of scored rollouts: the signs that a policy earns reward without the task.

Checks (each a flag with a one-line explanation; thresholds in :class:`AuditThresholds`, our
choices rather than values from a paper):

- ``length_hacking``: reward rises with length among rollouts of *equal correctness* (Spearman
  ρ within correct and within incorrect rollouts; overall when correctness is unknown). The
  overall correlation is reported too but not flagged: it mixes in "correct answers are longer".
- ``zero_variance_groups``: share of prompts (groups of ≥ 2 known rewards) whose rollouts all got the same
  reward, i.e. zero GRPO advantage — wasted samples (DAPO's dynamic sampling drops them).
- ``format_rejects_correct``: share of correct rollouts failing the format check (``format_ok``).
- ``format_outpaces_accuracy``: over steps, the format pass rate rises much faster than accuracy.
- ``truncation``: share of rollouts that hit the generation limit.
- ``repetition``: share of rollouts whose repeated word n-gram rate is high (degenerate loops).
- ``reward_without_accuracy``: over steps, mean reward rises while accuracy does not.
- ``tool_call_spam`` (trajectories only): share of trajectories that make the same tool call (same
  name and arguments) ``repeated_call`` times or more.
- ``repeated_turns`` (trajectories only): share of trajectories with an assistant turn (its text and
  calls) repeated verbatim.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..advantages import dynamic_sampling
from ..batch import Batch, group_reduce
from ..shaping.repetition import repetition_penalty
from .scored import BREAKDOWN_KEYS, ScoredRollouts, sorted_labels

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class AuditThresholds:
    """When a check raises its flag. Defaults are this project's judgement, not published values."""

    length_correlation: float = 0.3  # Spearman ρ(reward, length) within correct or within incorrect rollouts
    min_rollouts: int = 20  # fewest rollouts a correlation is computed on
    zero_variance_share: float = 0.5  # share of groups (size ≥ 2) with identical rewards
    format_rejects_correct: float = 0.05  # share of correct rollouts that fail the format check
    format_gap: float = 0.2  # rise of format pass rate minus rise of accuracy over the steps
    truncation_rate: float = 0.1  # share of truncated rollouts
    ngram: int = 3  # word n-gram for the repetition rate
    repetitive_rollout: float = 0.5  # a rollout with this share of repeated n-grams or more is "repetitive"
    repetitive_share: float = 0.1  # share of repetitive rollouts
    reward_rise: float = 0.25  # rise of mean reward over steps, in units of the reward's std
    accuracy_rise: float = 0.01  # accuracy must rise by more than this for a reward rise to be "explained"
    repeated_call: int = 3  # a trajectory making one call (name and arguments) this many times spams it
    tool_spam_share: float = 0.05  # share of trajectories spamming a call
    repeated_turn_share: float = 0.05  # share of trajectories repeating an assistant turn verbatim

    def __post_init__(self) -> None:
        for name, (low, high) in _THRESHOLD_RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:  # also refuses nan
                allowed = f"at least {low}" if high == float("inf") else f"in [{low}, {high}]"
                raise ValueError(f"audit threshold {name} must be {allowed}, got {value}")


# What each threshold can mean: shares and correlations lie in [0, 1]; a correlation needs 3 points.
_THRESHOLD_RANGES: dict[str, tuple[float, float]] = {
    "length_correlation": (0.0, 1.0),
    "min_rollouts": (3, float("inf")),
    "zero_variance_share": (0.0, 1.0),
    "format_rejects_correct": (0.0, 1.0),
    "format_gap": (0.0, 1.0),
    "truncation_rate": (0.0, 1.0),
    "ngram": (1, float("inf")),
    "repetitive_rollout": (0.0, 1.0),
    "repetitive_share": (0.0, 1.0),
    "reward_rise": (0.0, float("inf")),
    "accuracy_rise": (0.0, 1.0),
    "repeated_call": (2, float("inf")),
    "tool_spam_share": (0.0, 1.0),
    "repeated_turn_share": (0.0, 1.0),
}


@dataclass
class Flag:
    name: str
    raised: bool
    value: float | None
    threshold: float
    explanation: str


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None with fewer than 2 points or a constant input."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if denom <= 1e-12 * max(1.0, np.abs(x).max() * np.abs(y).max()) * len(x):
        return None
    return float(np.clip((dx * dy).sum() / denom, -1.0, 1.0))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on average ranks); None when undefined."""
    if len(x) < 2:
        return None
    return pearson(average_ranks(np.asarray(x)), average_ranks(np.asarray(y)))


def repeated_ngram_rate(text: str, ngram: int = 3) -> float:
    """1 − distinct/total word n-grams (Yeo et al. 2025's repetition measure); 0 for short texts."""
    return repetition_penalty(_WORD.findall(text), ngram, 1.0)


def trajectory_repeats(batch: Batch, i: int) -> tuple[int, int]:
    """(most repeats of one tool call, most repeats of one non-empty assistant turn) in row ``i``."""
    t = batch.trajectories
    assert t is not None
    turns = t.assistant(i)
    calls = Counter(json.dumps(c, sort_keys=True, default=str) for k in turns for c in t.tool_calls[k])
    said = Counter(
        json.dumps([t.text[k].strip(), t.tool_calls[k]], sort_keys=True, default=str)
        for k in turns
        if t.text[k].strip() or t.tool_calls[k]
    )
    return max(calls.values(), default=0), max(said.values(), default=0)


def trajectory_checks(run: ScoredRollouts, t: AuditThresholds) -> dict[str, Any] | None:
    """Tool-call spam and repeated turns over the run's trajectories (None when it has none)."""
    rows = np.flatnonzero(run.batch.is_trajectory)
    if not len(rows):
        return None
    traj = run.batch.trajectories
    assert traj is not None
    repeats = np.array([trajectory_repeats(run.batch, int(i)) for i in rows]).reshape(-1, 2)
    n_calls = np.array([int(traj.n_tool_calls[traj.rows(int(i))].sum()) for i in rows])
    out: dict[str, Any] = {"trajectories": int(len(rows)), "mean_tool_calls": float(n_calls.mean())}
    for name, flagged in (("tool_call_spam", repeats[:, 0] >= t.repeated_call), ("repeated_turns", repeats[:, 1] >= 2)):
        out[name] = {
            "count": int(flagged.sum()),
            "share": float(flagged.mean()),
            "max_repeats": int(repeats[:, 0 if name == "tool_call_spam" else 1].max()),
            "mean_reward_flagged": _mean(run.reward[rows[flagged]]),
            "mean_reward_other": _mean(run.reward[rows[~flagged]]),
            "prompt_ids": [run.batch.prompt_ids[int(i)] for i in rows[flagged][:5]],
        }
    return out


def fitted_change(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of ``y`` on ``x`` times the span of ``x``: the change over the run."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * np.ptp(x))


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def length_correlations(run: ScoredRollouts, min_rollouts: int) -> dict[str, Any]:
    """Pearson and Spearman of reward with length: overall, within correct, within incorrect."""
    has = ~np.isnan(run.reward)
    strata = {"overall": has, "correct": has & (run.correct == 1.0), "incorrect": has & (run.correct == 0.0)}
    out = {}
    for name, mask in strata.items():
        n = int(mask.sum())
        enough = n >= min_rollouts
        out[name] = {
            "n": n,
            "pearson": pearson(run.reward[mask], run.length[mask]) if enough else None,
            "spearman": spearman(run.reward[mask], run.length[mask]) if enough else None,
        }
    return out


def zero_variance_groups(reward: np.ndarray, correct: np.ndarray, group: np.ndarray, n_groups: int) -> dict[str, Any]:
    """Groups of ≥ 2 known rewards that are all equal (no GRPO advantage; the definition of
    :func:`rewardsmith.advantages.dynamic_sampling.zero_variance_groups`, as ``score`` reports it),
    and why: all correct, all wrong, or equal for another reason."""
    known = np.isfinite(reward)
    size = np.bincount(group[known], minlength=n_groups)
    flat = dynamic_sampling.zero_variance_groups(reward, group, n_groups)
    n_correct = group_reduce(correct == 1.0, group, n_groups, "sum")
    n_wrong = group_reduce(correct == 0.0, group, n_groups, "sum")
    eligible = int((size >= 2).sum())
    return {
        "groups": n_groups,
        "groups_of_2_or_more": eligible,
        "single_rollout_groups": int((size == 1).sum()),
        "zero_variance": int(flat.sum()),
        "share": float(flat.sum() / eligible) if eligible else None,
        "all_correct": int((flat & (n_correct == np.bincount(group, minlength=n_groups))).sum()),
        "all_wrong": int((flat & (n_wrong == np.bincount(group, minlength=n_groups))).sum()),
    }


def format_agreement(run: ScoredRollouts) -> dict[str, Any] | None:
    """Format pass (the records' ``format_ok``) against correctness; None without a format check."""
    fmt = run.format_ok
    if fmt is None:
        return None
    known = ~np.isnan(fmt) & ~np.isnan(run.correct)
    ok, right = fmt[known] == 1.0, run.correct[known] == 1.0
    n = int(known.sum())
    return {
        "n": n,
        "format_pass_rate": float(ok.mean()) if n else None,
        "accuracy": float(right.mean()) if n else None,
        "pass_and_correct": int((ok & right).sum()),
        "pass_but_wrong": int((ok & ~right).sum()),
        "fail_but_correct": int((~ok & right).sum()),
        "fail_and_wrong": int((~ok & ~right).sum()),
        "correct_failing_format": float((~ok & right).sum() / right.sum()) if right.any() else None,
    }


def bucket_table(run: ScoredRollouts, by: str, repetition: np.ndarray) -> list[dict[str, Any]]:
    """Per-bucket (step, data_source or difficulty) means of everything the audit looks at."""
    labels = np.array(run.breakdown(by), dtype=object)
    fmt = run.format_ok
    rows = []
    for label in sorted_labels(labels.tolist()):
        m = labels == label
        sub_group = np.unique(run.group[m], return_inverse=True)[1]
        zv = zero_variance_groups(run.reward[m], run.correct[m], sub_group, int(sub_group.max()) + 1)
        rows.append(
            {
                "key": label,
                "rollouts": int(m.sum()),
                "accuracy": _mean(run.correct[m]),
                "mean_reward": _mean(run.reward[m]),
                "mean_length": float(run.length[m].mean()),
                "spearman_reward_length": spearman(run.reward[m], run.length[m])
                if m.sum() >= 2 and not np.isnan(run.reward[m]).any()
                else None,
                "zero_variance_share": zv["share"],
                "truncation_rate": float(run.truncated[m].mean()),
                "repetition_rate": float(repetition[m].mean()),
                "format_pass_rate": _mean(fmt[m]) if fmt is not None else None,
                "components": {name: _mean(values[m]) for name, values in run.components.items()},
            }
        )
    return rows


def _step_changes(rows: list[dict[str, Any]], by: str, names: Sequence[str]) -> dict[str, float | None]:
    """Fitted change of each bucket mean over the steps (None unless ``by='step'`` with ≥ 2 steps)."""
    rows = [r for r in rows if r["key"] != "unknown"]
    if by != "step" or len(rows) < 2:
        return {name: None for name in names}
    x = np.array([float(r["key"]) for r in rows])

    def column(name: str) -> np.ndarray:
        if name.startswith("component:"):
            values = [r["components"].get(name.removeprefix("component:")) for r in rows]
        else:
            values = [r[name] for r in rows]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    return {name: fitted_change(x, column(name)) for name in names}


def audit(run: ScoredRollouts, by: str = "step", thresholds: AuditThresholds | None = None) -> dict[str, Any]:
    """Every audit metric, the per-bucket table and the flags, as a JSON-able dict."""
    t = thresholds or AuditThresholds()
    if by not in BREAKDOWN_KEYS:
        raise ValueError(f"--by: {by!r} is not allowed; allowed: {', '.join(BREAKDOWN_KEYS)}")
    if not len(run):
        raise ValueError("audit: no rollouts")
    run.require_scored("audit")
    if not run.has_reward:
        raise ValueError("audit: the records carry 'correct' but no 'reward'; score them with rewardsmith score")
    repetition = np.array([repeated_ngram_rate(c, t.ngram) for c in run.batch.completions])
    corr = length_correlations(run, t.min_rollouts)
    zv = zero_variance_groups(run.reward, run.correct, run.group, run.n_groups)
    fmt = format_agreement(run)
    rows = bucket_table(run, by, repetition)
    changes = _step_changes(
        rows, by, ["accuracy", "mean_reward", "format_pass_rate", *(f"component:{n}" for n in run.components)]
    )
    truncated = run.truncated
    repetitive = repetition >= t.repetitive_rollout
    rewarded = ~np.isnan(run.reward)
    metrics = {
        "reward_length_correlation": corr,
        "zero_variance_groups": zv,
        "format": fmt,
        "truncation": {
            "rate": float(truncated.mean()),
            "mean_reward_truncated": _mean(run.reward[truncated]),
            "mean_reward_completed": _mean(run.reward[~truncated]),
        },
        "repetition": {
            "ngram": t.ngram,
            "mean_rate": float(repetition.mean()),
            "repetitive_share": float(repetitive.mean()),
            "spearman_reward_repetition": spearman(run.reward[rewarded], repetition[rewarded])
            if rewarded.sum() >= t.min_rollouts
            else None,
        },
        "components": {
            name: {"mean": _mean(v), "change_over_steps": changes[f"component:{name}"]}
            for name, v in run.components.items()
        },
        "changes_over_steps": {k: v for k, v in changes.items() if not k.startswith("component:")},
    }
    trajectories = trajectory_checks(run, t)
    if trajectories is not None:
        metrics["trajectories"] = trajectories
    tr, rp = metrics["truncation"], metrics["repetition"]
    flags = [
        _length_flag(corr, run.correct, t),
        _threshold_flag(
            "zero_variance_groups",
            zv["share"],
            t.zero_variance_share,
            "no prompt with 2+ rollouts",
            lambda v: (
                f"{100 * v:.0f}% of prompts gave all their rollouts the same reward, {zv['all_correct']} all correct and {zv['all_wrong']} all wrong"
            ),
            "those prompts give GRPO no signal (consider dynamic sampling or harder/easier prompts)",
        ),
        _threshold_flag(
            "format_rejects_correct",
            fmt and fmt["correct_failing_format"],
            t.format_rejects_correct,
            "no format component or no correct rollout",
            lambda v: f"{100 * v:.1f}% of correct rollouts fail the format check",
            "right answers are scored as format failures (a format gate zeroes them, an added format reward pays them less)",
        ),
        _threshold_flag(
            "format_outpaces_accuracy",
            _gap(changes["format_pass_rate"], changes["accuracy"]),
            t.format_gap,
            "needs a format component and 2+ steps (--by step)",
            lambda v: f"over the steps the format pass rate rose {100 * v:+.1f} points more than accuracy",
            "the policy is learning the format, not the task",
            unit=" points",
        ),
        _threshold_flag(
            "truncation",
            tr["rate"],
            t.truncation_rate,
            "no rollouts",
            lambda v: f"{100 * v:.1f}% of rollouts hit the generation limit",
            "answers are cut off; the reward may be pushing length past the budget",
        ),
        _threshold_flag(
            "repetition",
            rp["repetitive_share"],
            t.repetitive_share,
            "no rollouts",
            lambda v: (
                f"{100 * v:.1f}% of rollouts repeat >= {100 * t.repetitive_rollout:.0f}% of their word {t.ngram}-grams"
            ),
            "degenerate loops are being generated (and rewarded if the reward pays length)",
        ),
        _reward_rise_flag(changes["mean_reward"], changes["accuracy"], run.reward, t),
    ]
    if trajectories is not None:
        flags += _trajectory_flags(trajectories, t)
    return {
        "rollouts": len(run),
        "groups": run.n_groups,
        "unit": run.unit,
        "accuracy": _mean(run.correct),
        "mean_reward": _mean(run.reward),
        "mean_length": float(run.length.mean()),
        "unknown_correct": int(np.isnan(run.correct).sum()),
        "by": by,
        "thresholds": asdict(t),
        "metrics": metrics,
        "flags": [asdict(f) for f in flags],
        "buckets": rows,
    }


def _trajectory_flags(m: dict[str, Any], t: AuditThresholds) -> list[Flag]:
    spam, rep = m["tool_call_spam"], m["repeated_turns"]

    def paid(d: dict[str, Any]) -> str:
        return (
            f"mean reward {d['mean_reward_flagged']:.3g} vs {d['mean_reward_other']:.3g} for the rest"
            if (d["mean_reward_flagged"] is not None and d["mean_reward_other"] is not None)
            else "no reward comparison"
        )

    return [
        _threshold_flag(
            "tool_call_spam",
            spam["share"],
            t.tool_spam_share,
            "no trajectories",
            lambda v: (
                f"{spam['count']} of {m['trajectories']} trajectories ({100 * v:.1f}%) make one tool call "
                f"{t.repeated_call}+ times (up to {spam['max_repeats']}; {paid(spam)})"
            ),
            "calls are being repeated; check that the reward does not pay for them (per-call tool rewards)",
        ),
        _threshold_flag(
            "repeated_turns",
            rep["share"],
            t.repeated_turn_share,
            "no trajectories",
            lambda v: (
                f"{rep['count']} of {m['trajectories']} trajectories ({100 * v:.1f}%) repeat an assistant turn "
                f"verbatim (up to {rep['max_repeats']} times; {paid(rep)})"
            ),
            "the policy loops; a per-turn reward may be paying each repetition",
        ),
    ]


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _threshold_flag(
    name: str,
    value: float | None,
    threshold: float,
    missing: str,
    measured: Callable[[float], str],
    meaning: str,
    unit: str = "%",
) -> Flag:
    """A flag raised when a share (or a change in points) exceeds its threshold."""
    if value is None:
        return Flag(name, False, None, threshold, f"not evaluated: {missing}")
    if value > threshold:
        return Flag(name, True, value, threshold, f"{measured(value)}: {meaning}")
    return Flag(name, False, value, threshold, f"{measured(value)}; flagged above {100 * threshold:g}{unit}")


def _length_flag(corr: dict[str, Any], correct: np.ndarray, t: AuditThresholds) -> Flag:
    strata = ["correct", "incorrect"] if not np.isnan(correct).all() else ["overall"]
    # A stratum with enough rollouts but a constant reward (or length) has no dependence on length: ρ = 0.
    values = {s: (corr[s]["spearman"] or 0.0) for s in strata if corr[s]["n"] >= t.min_rollouts}
    if not values:
        return Flag(
            "length_hacking",
            False,
            None,
            t.length_correlation,
            f"not evaluated: fewer than {t.min_rollouts} rollouts in {' and in '.join(strata)}",
        )
    worst = max(values, key=lambda s: values[s])
    rho = values[worst]
    where = "among all rollouts" if worst == "overall" else f"among {worst} rollouts"
    if rho > t.length_correlation:
        return Flag(
            "length_hacking",
            True,
            rho,
            t.length_correlation,
            f"reward rises with length {where} (Spearman ρ = {rho:.2f}): length itself is being paid",
        )
    return Flag(
        "length_hacking",
        False,
        rho,
        t.length_correlation,
        f"reward does not rise with length at equal correctness (largest Spearman ρ = {rho:.2f}, {where}; threshold {t.length_correlation:g})",
    )


def _reward_rise_flag(
    reward_change: float | None, acc_change: float | None, reward: np.ndarray, t: AuditThresholds
) -> Flag:
    spread = float(np.nanstd(reward)) if (~np.isnan(reward)).sum() >= 2 else 0.0
    if reward_change is None or acc_change is None or spread == 0.0:
        return Flag(
            "reward_without_accuracy",
            False,
            None,
            t.reward_rise,
            "not evaluated: needs 2+ steps (--by step) with known correctness and varying reward",
        )
    rise = reward_change / spread
    raised = rise > t.reward_rise and acc_change <= t.accuracy_rise
    text = f"mean reward changed by {rise:+.2f} reward std over the steps while accuracy changed by {100 * acc_change:+.1f} points"
    return Flag(
        "reward_without_accuracy",
        raised,
        rise,
        t.reward_rise,
        f"{text}: the reward is being earned some other way" if raised else text,
    )
