"""WildBench metrics (Lin et al., 2024, "WildBench"): WB-Reward and WB-Score.

**WB-Reward**: pairwise outcomes of the model against a baseline, much better +1, slightly
better +0.5, tie 0, slightly worse −0.5, much worse −1; reward = 100·mean. Length margin K:
a *slightly* better/worse outcome whose winner is longer than the loser by more than K
characters becomes a tie (K = 500 on the leaderboard [unverified]; ``None`` disables it, the
script's default).

Outcome encodings accepted (A = the model, B = the baseline): ``much_better``, ``better``,
``tie``, ``worse``, ``much_worse``; WildBench's ``A++``, ``A+``, ``A=B``, ``B+``, ``B++``; or
the numbers 1, 0.5, 0, −0.5, −1.

**WB-Score**: each output scored 1–10 on its own; per task group (mean score − 5)·2·10, and
the macro average over task groups.

Pairwise JSONL: ``outcome``, ``output_model`` and ``output_base`` (texts, needed when K is set),
optional ``model``. Score JSONL: ``score`` (1–10), ``task_group`` (optional, default "all"),
optional ``model``.

    >>> wb_reward([{"outcome": "A+", "output_model": "x" * 700, "output_base": "y"},
    ...            {"outcome": "much_worse", "output_model": "x", "output_base": "y"}], length_margin=500)["reward"]
    -50.0
    >>> wb_score([{"score": 8, "task_group": "coding"}, {"score": 6, "task_group": "math"}])["score"]
    40.0
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from ..records import RecordError, completion_text

OUTCOME_VALUES: dict[str, float] = {
    "much_better": 1.0, "better": 0.5, "tie": 0.0, "worse": -0.5, "much_worse": -1.0,
    "A++": 1.0, "A+": 0.5, "A=B": 0.0, "B+": -0.5, "B++": -1.0,
}
LEADERBOARD_MARGIN = 500  # characters [unverified]


def outcome_value(outcome: Any) -> float:
    """The WB-Reward value of one outcome in any accepted encoding."""
    if isinstance(outcome, str):
        if outcome not in OUTCOME_VALUES:
            raise RecordError(f"unknown outcome {outcome!r}; allowed: {', '.join(OUTCOME_VALUES)} or 1, 0.5, 0, -0.5, -1")
        return OUTCOME_VALUES[outcome]
    if isinstance(outcome, (int, float)) and not isinstance(outcome, bool) and float(outcome) in (1.0, 0.5, 0.0, -0.5, -1.0):
        return float(outcome)
    raise RecordError(f"outcome must be one of {', '.join(OUTCOME_VALUES)} or 1, 0.5, 0, -0.5, -1; got {outcome!r}")


def apply_length_margin(value: float, len_model: int, len_base: int, margin: int | None) -> float:
    """A slight win (±0.5) becomes a tie when its winner is longer than the loser by > ``margin`` chars."""
    if margin is None or abs(value) != 0.5:
        return value
    winner_excess = (len_model - len_base) if value > 0 else (len_base - len_model)
    return 0.0 if winner_excess > margin else value


def wb_reward(rows: Iterable[Mapping[str, Any]], length_margin: int | None = None) -> dict[str, Any]:
    """WB-Reward (100·mean outcome value) with outcome counts, after the length margin."""
    values, converted = [], 0
    for i, row in enumerate(rows):
        if "outcome" not in row:
            raise RecordError(f"row {i}: missing required field 'outcome'")
        v = outcome_value(row["outcome"])
        if length_margin is not None and abs(v) == 0.5:
            for key in ("output_model", "output_base"):
                if row.get(key) is None:
                    raise RecordError(f"row {i}: the length margin needs {key!r}")
            new = apply_length_margin(v, len(completion_text(row["output_model"])), len(completion_text(row["output_base"])), length_margin)
            converted += new != v
            v = new
        values.append(v)
    arr = np.array(values, dtype=np.float64)
    counts = {name: int((arr == val).sum()) for name, val in (("much_better", 1.0), ("better", 0.5), ("tie", 0.0), ("worse", -0.5), ("much_worse", -1.0))}
    return {"n": len(arr), "reward": float(100.0 * arr.mean()) if len(arr) else None, "length_margin": length_margin,
            "converted_to_tie": converted, **counts}


def wb_score(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """WB-Score: per task group (mean − 5)·2·10, macro-averaged over groups."""
    by_group: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        s = row.get("score")
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 1 <= s <= 10:
            raise RecordError(f"row {i}: 'score' must be a number in [1, 10], got {s!r}")
        by_group.setdefault(str(row.get("task_group") or "all"), []).append(float(s))
    groups = {g: {"n": len(v), "mean_score": float(np.mean(v)), "score": (float(np.mean(v)) - 5.0) * 2.0 * 10.0} for g, v in sorted(by_group.items())}
    return {"n": sum(g["n"] for g in groups.values()), "score": float(np.mean([g["score"] for g in groups.values()])) if groups else None, "task_groups": groups}


def by_model(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows split by their ``model`` field (default "model")."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row.get("model") or "model"), []).append(row)
    return out
