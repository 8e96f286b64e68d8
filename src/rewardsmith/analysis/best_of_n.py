"""Best-of-N sampling: its KL cost, its win rate, and selection by any reward spec.

KL(π_BoN ‖ p) = log N − (N − 1)/N for a continuous reward (an upper bound when rewards tie), and
the selected sample beats a fresh sample from p with probability N/(N + 1); best-of-N is
asymptotically equivalent to KL-constrained RL (Yang et al., 2024, "Asymptotics of Language
Model Alignment").

    >>> round(bon_kl(4), 4)     # log 4 - 3/4
    0.6363
    >>> bon_win_rate(4)
    0.8
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .scored import ScoredRollouts


def bon_kl(n: int) -> float:
    """KL divergence (nats) of best-of-``n`` from the base policy: log n − (n − 1)/n."""
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}")
    return math.log(n) - (n - 1) / n


def bon_win_rate(n: int) -> float:
    """Probability that the best of ``n`` samples beats one fresh sample: n/(n + 1)."""
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}")
    return n / (n + 1)


def ensure_scored(records: Sequence[Mapping[str, Any]], spec: Any = None) -> list[dict[str, Any]]:
    """``records`` scored by ``spec`` (a path or dict, via :func:`rewardsmith.load_spec`) when one is
    given; otherwise the records as they are, which must then carry ``reward``."""
    recs = [dict(r) for r in records]
    if spec is not None:
        from ..pipeline import load_spec

        with load_spec(spec) as pipe:
            return pipe.score(recs).to_records(recs)
    missing = [i for i, r in enumerate(recs) if r.get("reward") is None]
    if missing:
        raise ValueError(
            f"{len(missing)} records have no 'reward' (first: record {missing[0]}); give a spec to score them"
        )
    return recs


def select_best_of_n(records: Sequence[Mapping[str, Any]], spec: Any = None) -> list[dict[str, Any]]:
    """For each ``prompt_id`` (in order of first appearance) the rollout with the highest reward;
    ties go to the earliest. Scores the records with ``spec`` first when given."""
    scored = ensure_scored(records, spec)
    best: dict[str, int] = {}
    for i, r in enumerate(scored):
        key = str(r["prompt_id"])
        if key not in best or float(r["reward"]) > float(scored[best[key]]["reward"]):
            best[key] = i
    return [scored[i] for i in best.values()]


def best_of_n_report(records: Sequence[Mapping[str, Any]], spec: Any = None) -> dict[str, Any]:
    """What best-of-N selection by this reward buys: accuracy of the selected rollouts against
    the mean rollout (pass@1) and the oracle (any correct, pass@N), their mean length, and the
    theoretical KL cost and win rate per group size N."""
    scored = ensure_scored(records, spec)
    selected = select_best_of_n(scored)
    run, chosen = ScoredRollouts.from_records(scored), ScoredRollouts.from_records(selected)
    sizes = np.bincount(run.group)
    known = ~np.isnan(run.correct)
    any_correct = np.bincount(run.group, weights=(run.correct == 1.0).astype(float), minlength=run.n_groups) > 0
    any_known = np.bincount(run.group, weights=known.astype(float), minlength=run.n_groups) > 0
    per_prompt_acc = np.bincount(run.group, weights=np.nan_to_num(run.correct), minlength=run.n_groups) / np.maximum(
        1, np.bincount(run.group, weights=known.astype(float), minlength=run.n_groups)
    )
    chosen_known = ~np.isnan(chosen.correct)
    return {
        "prompts": run.n_groups,
        "rollouts": len(run),
        "unit": run.unit,
        "group_sizes": {str(int(n)): int((sizes == n).sum()) for n in np.unique(sizes)},
        "selected_accuracy": float(chosen.correct[chosen_known].mean()) if chosen_known.any() else None,
        "mean_accuracy": float(per_prompt_acc[any_known].mean()) if any_known.any() else None,
        "oracle_accuracy": float(any_correct[any_known].mean()) if any_known.any() else None,
        "selected_mean_length": float(chosen.length.mean()) if len(chosen) else None,
        "mean_length": float(run.length.mean()) if len(run) else None,
        "selected_mean_reward": float(np.mean([r["reward"] for r in selected])) if selected else None,
        "mean_reward": float(np.mean([r["reward"] for r in scored])) if scored else None,
        "theory": {
            str(int(n)): {"kl_nats": bon_kl(int(n)), "win_rate": bon_win_rate(int(n))} for n in np.unique(sizes)
        },
    }
