"""WildBench metrics (Lin et al., 2024, "WildBench"): WB-Reward and WB-Score, with the leaderboard's conventions.

The conventions are those of allenai/WildBench's leaderboard scripts (``leaderboard/data_dir/_create_tables.py``
and ``_merge_results.py``, read at commit 1c8615b): ``conventions="leaderboard"`` (the default) follows them,
``conventions="plain"`` counts every row and weights task groups equally.

**WB-Reward**: pairwise outcomes of the model against a baseline, much better +1, slightly better +0.5,
tie 0, slightly worse −0.5, much worse −1; reward = 100·mean. Length margin K: a *slightly* better/worse
outcome whose winner is longer than the loser by more than K characters becomes a tie (the script's default
K = −1, i.e. off, here ``None``; the leaderboard publishes K ∈ {100, 300, 500, 1000, 1500, 2000, 3000} too).
Leaderboard conventions: a pair whose either output is truncated (ends with "... (truncated)") or empty
(WildBench's "[This model response is empty.]" placeholder, or "") is not counted, yet the overall reward
still divides by *all* rows (so it counts as a tie there) while each task group's reward divides by its counted
rows. **Task-macro WB-Reward** (the leaderboard's ranking column ``task_macro_reward``): Σ_g w_g·reward_g /
Σ_all w, over the groups present, with the weights below (plain: the mean over groups present); a row counts
for every task group it is tagged with. Against several baselines (``baseline`` field) the leaderboard ranks by
the mean of the per-baseline task-macro rewards (haiku, llama-2-70b, gpt-4-turbo), see :func:`wb_reward_mixture`.

**WB-Score**: each output scored 1–10 on its own, adjusted to (score − 5)·2·10. The overall WB-Score is the
adjusted mean over *all* rows; each task group's over its rows whose output is neither truncated nor empty
(leaderboard conventions; rows without an ``output`` are counted); the **task-macro WB-Score** (the
leaderboard's ``WB_score.task_macro``) is Σ_g w_g·score_g / Σ_all w (plain: the mean over groups present).

Task-group weights (the leaderboard's): Creative Tasks 0.5, Planning & Reasoning 1.25, Math & Data Analysis
1, Information/Advice seeking 0.75, Coding & Debugging 1.25. A row's ``task_group`` (string) or
``task_groups`` (list) holds these names or WildBench's tags (primary and secondary), which map onto them as
the script does; other names are errors under leaderboard conventions.

Outcome encodings accepted (A = the model, B = the baseline): ``much_better``, ``better``,
``tie``, ``worse``, ``much_worse``; WildBench's ``A++``, ``A+``, ``A=B``, ``B+``, ``B++``; or
the numbers 1, 0.5, 0, −0.5, −1.

Pairwise JSONL: ``outcome``, ``output_model`` and ``output_base`` (texts; needed for the margin and for the
truncation rule), optional ``model``, ``baseline``, ``task_group(s)``. Score JSONL: ``score`` (1–10), optional
``output``, ``task_group(s)``, ``model``.

    >>> wb_reward([{"outcome": "A+", "output_model": "x" * 700, "output_base": "y"},
    ...            {"outcome": "much_worse", "output_model": "x", "output_base": "y"}], length_margin=500)["reward"]
    -50.0
    >>> r = wb_score([{"score": 8, "task_group": "Coding & Debugging"}, {"score": 6, "task_group": "Math"}])
    >>> r["score"], r["task_macro_score"]
    (40.0, 20.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..records import RecordError, completion_text

OUTCOME_VALUES: dict[str, float] = {
    "much_better": 1.0,
    "better": 0.5,
    "tie": 0.0,
    "worse": -0.5,
    "much_worse": -1.0,
    "A++": 1.0,
    "A+": 0.5,
    "A=B": 0.0,
    "B+": -0.5,
    "B++": -1.0,
}
CONVENTIONS = ("leaderboard", "plain")
TASK_GROUP_WEIGHTS = {
    "Creative Tasks": 0.5,
    "Planning & Reasoning": 1.25,
    "Math & Data Analysis": 1.0,
    "Information/Advice seeking": 0.75,
    "Coding & Debugging": 1.25,
}
TAG_TO_GROUP = {
    "Information seeking": "Information/Advice seeking",
    "Advice seeking": "Information/Advice seeking",
    "Creative Writing": "Creative Tasks",
    "Editing": "Creative Tasks",
    "Brainstorming": "Creative Tasks",
    "Role playing": "Creative Tasks",
    "Others": "Creative Tasks",
    "Coding & Debugging": "Coding & Debugging",
    "Reasoning": "Planning & Reasoning",
    "Planning": "Planning & Reasoning",
    "Math": "Math & Data Analysis",
    "Data Analysis": "Math & Data Analysis",
}
TRUNCATED_SUFFIX = "... (truncated)"
EMPTY_PLACEHOLDER = "[This model response is empty.]"


def _check_conventions(conventions: str) -> None:
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {', '.join(CONVENTIONS)}; got {conventions!r}")


def is_unusable(text: str) -> bool:
    """The leaderboard leaves out truncated outputs and empty ones (WildBench's placeholder or '')."""
    return text.endswith(TRUNCATED_SUFFIX) or text in (EMPTY_PLACEHOLDER, "")


def task_groups_of(row: Mapping[str, Any], conventions: str = "leaderboard") -> list[str]:
    """The row's task groups (WildBench tags mapped to the leaderboard's five groups), deduplicated, sorted."""
    raw = row.get("task_groups", row.get("task_group"))
    if raw is None:
        return []
    tags = [raw] if isinstance(raw, str) else raw
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RecordError(f"'task_group(s)' must be a string or a list of strings, got {raw!r}")
    groups = {TAG_TO_GROUP.get(t, t) for t in tags}
    unknown = sorted(groups - set(TASK_GROUP_WEIGHTS))
    if unknown and conventions == "leaderboard":
        raise RecordError(
            f"unknown task group(s) {', '.join(unknown)}: the leaderboard's are {', '.join(TASK_GROUP_WEIGHTS)} "
            f"(or WildBench's tags {', '.join(TAG_TO_GROUP)}); use conventions 'plain' for your own"
        )
    return sorted(groups)


def task_macro(per_group: Mapping[str, float], conventions: str) -> float | None:
    """Leaderboard: Σ_g w_g·v_g / Σ_all w over the groups present; plain: their mean. None without groups."""
    if not per_group:
        return None
    if conventions == "plain":
        return float(np.mean(list(per_group.values())))
    return sum(TASK_GROUP_WEIGHTS[g] * v for g, v in per_group.items()) / sum(TASK_GROUP_WEIGHTS.values())


def outcome_value(outcome: Any) -> float:
    """The WB-Reward value of one outcome in any accepted encoding."""
    if isinstance(outcome, str):
        if outcome not in OUTCOME_VALUES:
            raise RecordError(
                f"unknown outcome {outcome!r}; allowed: {', '.join(OUTCOME_VALUES)} or 1, 0.5, 0, -0.5, -1"
            )
        return OUTCOME_VALUES[outcome]
    if (
        isinstance(outcome, (int, float))
        and not isinstance(outcome, bool)
        and float(outcome) in (1.0, 0.5, 0.0, -0.5, -1.0)
    ):
        return float(outcome)
    raise RecordError(f"outcome must be one of {', '.join(OUTCOME_VALUES)} or 1, 0.5, 0, -0.5, -1; got {outcome!r}")


def apply_length_margin(value: float, len_model: int, len_base: int, margin: int | None) -> float:
    """A slight win (±0.5) becomes a tie when its winner is longer than the loser by > ``margin`` chars."""
    if margin is None or abs(value) != 0.5:
        return value
    winner_excess = (len_model - len_base) if value > 0 else (len_base - len_model)
    return 0.0 if winner_excess > margin else value


def wb_reward(
    rows: Iterable[Mapping[str, Any]], length_margin: int | None = None, conventions: str = "leaderboard"
) -> dict[str, Any]:
    """WB-Reward (overall and per task group, ×100), the task-macro WB-Reward and the outcome counts."""
    _check_conventions(conventions)
    values, converted, skipped, total = [], 0, 0, 0
    by_group: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        total += 1
        if "outcome" not in row:
            raise RecordError(f"row {i}: missing required field 'outcome'")
        v = outcome_value(row["outcome"])
        texts = {key: completion_text(row[key]) for key in ("output_model", "output_base") if row.get(key) is not None}
        if conventions == "leaderboard" and any(is_unusable(t) for t in texts.values()):
            skipped += 1
            continue
        if length_margin is not None and abs(v) == 0.5:
            for key in ("output_model", "output_base"):
                if key not in texts:
                    raise RecordError(f"row {i}: the length margin needs {key!r}")
            new = apply_length_margin(v, len(texts["output_model"]), len(texts["output_base"]), length_margin)
            converted += new != v
            v = new
        values.append(v)
        for g in task_groups_of(row, conventions):
            by_group.setdefault(g, []).append(v)
    arr = np.array(values, dtype=np.float64)
    counts = {
        name: int((arr == val).sum())
        for name, val in (("much_better", 1.0), ("better", 0.5), ("tie", 0.0), ("worse", -0.5), ("much_worse", -1.0))
    }
    denominator = total if conventions == "leaderboard" else len(arr)  # the leaderboard divides by every row
    groups = {g: {"n": len(v), "reward": 100.0 * float(np.mean(v))} for g, v in sorted(by_group.items())}
    return {
        "n": len(arr),
        "reward": float(100.0 * arr.sum() / denominator) if denominator else None,
        "task_macro_reward": task_macro({g: v["reward"] for g, v in groups.items()}, conventions),
        "task_groups": groups,
        "length_margin": length_margin,
        "conventions": conventions,
        "converted_to_tie": converted,
        "skipped_truncated_or_empty": skipped,
        **counts,
    }


def wb_reward_mixture(
    rows: Iterable[Mapping[str, Any]], length_margin: int | None = None, conventions: str = "leaderboard"
) -> dict[str, Any]:
    """:func:`wb_reward` per ``baseline`` (default "base") and the means over baselines: ``mixture_of_rewards`` and
    ``task_macro_reward`` (the leaderboard's ranking column; it averages its three baselines)."""
    per: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        per.setdefault(str(row.get("baseline") or "base"), []).append(row)
    results = {b: wb_reward(rs, length_margin, conventions) for b, rs in sorted(per.items())}
    rewards = [r["reward"] for r in results.values() if r["reward"] is not None]
    macros = [r["task_macro_reward"] for r in results.values() if r["task_macro_reward"] is not None]
    return {
        "baselines": results,
        "mixture_of_rewards": float(np.mean(rewards)) if rewards else None,
        "task_macro_reward": float(np.mean(macros)) if macros else None,
    }


def _adjusted(scores: list[float]) -> float:
    """WildBench's adjusted score ×10: (mean − 5)·2·10, on [−80, 100]."""
    return (float(np.mean(scores)) - 5.0) * 2.0 * 10.0


def wb_score(rows: Iterable[Mapping[str, Any]], conventions: str = "leaderboard") -> dict[str, Any]:
    """WB-Score: (mean − 5)·2·10 overall and per task group, and the task-macro WB-Score (module docstring)."""
    _check_conventions(conventions)
    scores: list[float] = []
    by_group: dict[str, list[float]] = {}
    skipped = 0
    for i, row in enumerate(rows):
        s = row.get("score")
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 1 <= s <= 10:
            raise RecordError(f"row {i}: 'score' must be a number in [1, 10], got {s!r}")
        scores.append(float(s))
        output = row.get("output")
        if conventions == "leaderboard" and output is not None and is_unusable(completion_text(output)):
            skipped += 1  # in the overall mean, out of the task groups (as the leaderboard)
            continue
        for g in task_groups_of(row, conventions):
            by_group.setdefault(g, []).append(float(s))
    groups = {
        g: {"n": len(v), "mean_score": float(np.mean(v)), "score": _adjusted(v)} for g, v in sorted(by_group.items())
    }
    return {
        "n": len(scores),
        "score": _adjusted(scores) if scores else None,
        "task_macro_score": task_macro({g: v["score"] for g, v in groups.items()}, conventions),
        "task_groups": groups,
        "conventions": conventions,
        "skipped_truncated_or_empty": skipped,
    }


def by_model(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows split by their ``model`` field (default "model")."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row.get("model") or "model"), []).append(row)
    return out
