"""Accuracy/length trade-off of one or several scored runs (the efficient-reasoning papers' metrics).

pass@1 and pass@k per prompt (unbiased estimator of Chen et al., 2021, "Evaluating Large
Language Models Trained on Code", eq. 1), mean/median length per difficulty, token reduction
against a baseline run, AES (Ada-R1), accuracy per 1k tokens (DLER's "intelligence per token")
and the Pareto front over runs (accuracy up, length down).

Rollouts whose correctness is unknown (``correct`` null: timeout, bad reference) are left out
of pass@k and counted; they still count for length.

    >>> round(pass_at_k(n=5, c=2, k=2), 4)   # 1 - C(3,2)/C(5,2) = 1 - 3/10
    0.7
    >>> pareto_front({"long": (0.8, 900.0), "short": (0.7, 300.0), "worse": (0.6, 500.0)})
    ['short', 'long']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..batch import group_reduce
from .scored import ScoredRollouts, sorted_labels

AES_ALPHA, AES_BETA, AES_GAMMA = 1.0, 3.0, 5.0  # Ada-R1 weights [unverified]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: 1 − C(n−c, k)/C(n, k).

    Chen et al. (2021), eq. 1, computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i) so large ``n`` never
    overflows. Needs 1 ≤ k ≤ n and 0 ≤ c ≤ n.
    """
    if not (1 <= k <= n) or not (0 <= c <= n):
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_over_prompts(correct: np.ndarray, group: np.ndarray, n_groups: int, k: int) -> tuple[float | None, int]:
    """Mean pass@k over prompts with at least ``k`` rollouts of known correctness.

    Returns (mean or None when no prompt qualifies, number of prompts used)."""
    known = ~np.isnan(correct)
    n = group_reduce(np.ones(len(correct)), group, n_groups, "count", where=known).astype(int)
    c = group_reduce(np.nan_to_num(correct), group, n_groups, "sum", where=known).round().astype(int)
    usable = np.flatnonzero(n >= k)
    if not len(usable):
        return None, 0
    return float(np.mean([pass_at_k(int(n[g]), int(c[g]), k) for g in usable])), len(usable)


def token_reduction(length: float, base_length: float) -> float | None:
    """(L_base − L)/L_base (Ada-R1's ΔL); None when the baseline length is 0."""
    return (base_length - length) / base_length if base_length > 0 else None


def aes(
    acc: float,
    length: float,
    base_acc: float,
    base_length: float,
    alpha: float = AES_ALPHA,
    beta: float = AES_BETA,
    gamma: float = AES_GAMMA,
) -> float:
    """Accuracy-Efficiency Score (Ada-R1, 2025), weights α, β, γ [unverified].

    ΔL = (L_base − L)/L_base, ΔAcc = (Acc − Acc_base)/Acc_base;
    AES = α·ΔL + β·ΔAcc if ΔAcc ≥ 0 else α·ΔL − γ·|ΔAcc|.
    With ``base_acc`` = 0 the relative change is undefined and the absolute change is used;
    ``base_length`` = 0 gives ΔL = 0.

    >>> aes(acc=0.9, length=50, base_acc=0.9, base_length=100)
    0.5
    >>> round(aes(acc=0.8, length=50, base_acc=1.0, base_length=100), 6)   # 0.5 - 5·0.2
    -0.5
    """
    d_len = (base_length - length) / base_length if base_length > 0 else 0.0
    d_acc = (acc - base_acc) / base_acc if base_acc > 0 else acc - base_acc
    return alpha * d_len + beta * d_acc if d_acc >= 0 else alpha * d_len - gamma * abs(d_acc)


def accuracy_per_1k(acc: float, mean_length: float) -> float | None:
    """Accuracy per 1000 length units (DLER's "intelligence per token"); None for zero length."""
    return 1000.0 * acc / mean_length if mean_length > 0 else None


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Names of the (accuracy, length) points no other point dominates (accuracy ≥, length ≤,
    one strictly), sorted by length. Identical points are all on the front."""
    front = [
        name
        for name, (acc, ln) in points.items()
        if not any(a >= acc and l <= ln and (a > acc or l < ln) for other, (a, l) in points.items() if other != name)
    ]
    return sorted(front, key=lambda n: (points[n][1], -points[n][0]))


def _length_stats(length: np.ndarray) -> dict[str, float | None]:
    if not len(length):
        return {"mean_length": None, "median_length": None}
    return {"mean_length": float(np.mean(length)), "median_length": float(np.median(length))}


def run_summary(run: ScoredRollouts, ks: Sequence[int] = (1,), by: str = "difficulty") -> dict[str, Any]:
    """pass@k for each k, length statistics, truncation and the same per ``by`` label."""
    run.require_scored("trade-off")

    def block(mask: np.ndarray) -> dict[str, Any]:
        sub_group = run.group[mask]
        out: dict[str, Any] = {
            "rollouts": int(mask.sum()),
            "prompts": int(len(np.unique(sub_group))),
            "unknown_correct": int(np.isnan(run.correct[mask]).sum()),
        }
        for k in ks:
            value, used = pass_at_k_over_prompts(run.correct[mask], sub_group, run.n_groups, k)
            out[f"pass@{k}"] = value
            if k != 1:
                out[f"pass@{k}_prompts"] = used
        out.update(_length_stats(run.length[mask]))
        out["truncation_rate"] = float(run.truncated[mask].mean()) if mask.any() else None
        return out

    summary = block(np.ones(len(run), dtype=bool))
    summary["unit"] = run.unit
    labels = np.array(run.breakdown(by), dtype=object)
    summary["by"] = by
    summary["breakdown"] = {label: block(labels == label) for label in sorted_labels(labels.tolist())}
    return summary


def compare_runs(
    runs: Mapping[str, ScoredRollouts],
    baseline: str | None = None,
    ks: Sequence[int] = (1,),
    by: str = "difficulty",
    alpha: float = AES_ALPHA,
    beta: float = AES_BETA,
    gamma: float = AES_GAMMA,
) -> dict[str, Any]:
    """Summaries of several runs, each against ``baseline`` (token reduction, accuracy change,
    AES), accuracy per 1k length units and the Pareto front over runs with a known pass@1.

    Every run must measure length in the same unit."""
    if not runs:
        raise ValueError("compare_runs: no runs given")
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not one of the runs: {', '.join(runs)}")
    units = {name: run.unit for name, run in runs.items()}
    if len(set(units.values())) > 1:
        raise ValueError(
            f"runs measure length in different units ({units}); give num_tokens for all runs or pass unit='words'"
        )
    ks = sorted(set([1, *ks]))
    summaries = {name: run_summary(run, ks, by) for name, run in runs.items()}
    for s in summaries.values():
        acc, ln = s["pass@1"], s["mean_length"]
        s["accuracy_per_1k"] = accuracy_per_1k(acc, ln) if acc is not None and ln is not None else None
    if baseline is not None:
        base = summaries[baseline]
        for s in summaries.values():
            ok = None not in (s["pass@1"], s["mean_length"], base["pass@1"], base["mean_length"])
            s["token_reduction"] = token_reduction(s["mean_length"], base["mean_length"]) if ok else None
            s["accuracy_change"] = s["pass@1"] - base["pass@1"] if ok else None
            s["aes"] = (
                aes(s["pass@1"], s["mean_length"], base["pass@1"], base["mean_length"], alpha, beta, gamma)
                if ok
                else None
            )
    points = {
        name: (s["pass@1"], s["mean_length"])
        for name, s in summaries.items()
        if s["pass@1"] is not None and s["mean_length"] is not None
    }
    return {
        "unit": next(iter(units.values())),
        "baseline": baseline,
        "ks": ks,
        "aes_weights": {"alpha": alpha, "beta": beta, "gamma": gamma, "note": "Ada-R1 weights [unverified]"},
        "runs": summaries,
        "pareto_front": pareto_front(points),
    }
