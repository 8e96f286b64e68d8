"""PNG plots for the trade-off and the audit (matplotlib, Agg backend; imported only when plotting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .scored import ScoredRollouts

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def plot_pareto(
    points: Mapping[str, tuple[float, float]], front: Sequence[str], unit: str, path: Path, baseline: str | None = None
) -> Path:
    """Accuracy (pass@1) against mean length, one labelled point per run, the Pareto front drawn
    as a staircase through its runs (dominated region shaded)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, (acc, length) in points.items():
        on_front = name in front
        ax.scatter(
            length,
            acc,
            s=70 if on_front else 40,
            marker="*" if name == baseline else "o",
            color="tab:blue" if on_front else "tab:gray",
            zorder=3,
            edgecolor="black" if on_front else "none",
        )
        ax.annotate(
            name + (" (baseline)" if name == baseline else ""),
            (length, acc),
            textcoords="offset points",
            xytext=(6, 5),
            fontsize=9,
        )
    if front:
        xs = [points[n][1] for n in front]
        ys = [points[n][0] for n in front]
        ax.step(
            xs,
            ys,
            where="post",
            linestyle="--",
            color="tab:blue",
            linewidth=1.2,
            label="Pareto front (higher accuracy, fewer " + unit + ")",
        )
    ax.set_xlabel(f"mean completion length ({unit})")
    ax.set_ylabel("accuracy (pass@1)")
    lo = min(a for a, _ in points.values())
    ax.set_ylim(max(0.0, lo - 0.1), min(1.05, max(a for a, _ in points.values()) + 0.1))
    ax.margins(x=0.15)  # room for the labels
    ax.set_title("accuracy vs length per run")
    ax.grid(alpha=0.3)
    if front:
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_breakdown(summaries: Mapping[str, dict[str, Any]], by: str, unit: str, path: Path) -> Path:
    """Per-``by`` pass@1 (top) and mean length (bottom), one bar per run."""
    plt = _pyplot()
    labels: list[str] = []
    for s in summaries.values():
        labels += [k for k in s["breakdown"] if k not in labels]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(summaries))
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 1.2 * len(labels) + 3), 6.5), sharex=True)
    for i, (name, s) in enumerate(summaries.items()):
        offset = (i - (len(summaries) - 1) / 2) * width
        for ax, key in zip(axes, ("pass@1", "mean_length")):
            values = [s["breakdown"].get(k, {}).get(key) for k in labels]
            ax.bar(x + offset, [np.nan if v is None else v for v in values], width, label=name)
    axes[0].set_ylabel("accuracy (pass@1)")
    axes[1].set_ylabel(f"mean length ({unit})")
    axes[1].set_xticks(x, labels)
    axes[1].set_xlabel(by)
    axes[0].legend(fontsize=8, ncol=min(4, len(summaries)))
    axes[0].set_title(f"accuracy and length by {by}")
    return _save(fig, path)


def plot_reward_vs_length(run: ScoredRollouts, path: Path, correlations: Mapping[str, Any]) -> Path:
    """Scatter of reward against length, coloured by correctness, with the Spearman ρ per stratum."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    groups = [
        ("correct", run.correct == 1.0, "tab:green"),
        ("incorrect", run.correct == 0.0, "tab:red"),
        ("unknown", np.isnan(run.correct), "tab:gray"),
    ]
    rng = np.random.default_rng(0)
    spread = float(np.nanstd(run.reward)) or 1.0
    for name, mask, color in groups:
        if not mask.any():
            continue
        rho = correlations.get(name, {}).get("spearman")
        label = f"{name} (n={int(mask.sum())}" + (f", Spearman ρ={rho:.2f})" if rho is not None else ")")
        jitter = rng.normal(0.0, 0.01 * spread, int(mask.sum()))  # separates identical rewards
        ax.scatter(run.length[mask], run.reward[mask] + jitter, s=10, alpha=0.5, color=color, label=label)
    rho = correlations.get("overall", {}).get("spearman")
    ax.set_title("reward vs length" + (f" (overall Spearman ρ={rho:.2f})" if rho is not None else ""))
    ax.set_xlabel(f"completion length ({run.unit})")
    ax.set_ylabel("reward (small vertical jitter)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_buckets(rows: Sequence[dict[str, Any]], by: str, unit: str, path: Path) -> Path:
    """Per-bucket accuracy, mean reward, format pass rate and component means (top), and mean
    length with the truncation rate (bottom). Lines over steps, markers for categories."""
    plt = _pyplot()
    keys = [r["key"] for r in rows]
    numeric = by == "step" and all(k != "unknown" for k in keys)
    x = np.array([float(k) for k in keys]) if numeric else np.arange(len(keys))
    line = "-" if numeric and len(keys) > 1 else "none"
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    series = {"accuracy": [r["accuracy"] for r in rows], "mean reward": [r["mean_reward"] for r in rows]}
    if any(r["format_pass_rate"] is not None for r in rows):
        series["format pass rate"] = [r["format_pass_rate"] for r in rows]
    for name in rows[0]["components"] if rows else []:
        if name != "format":
            series[f"component: {name}"] = [r["components"].get(name) for r in rows]
    for name, values in series.items():
        look = (
            {
                "color": "black",
                "linestyle": "--" if line == "-" else "none",
                "marker": "x",
                "markersize": 8,
                "zorder": 3,
            }
            if name == "accuracy"
            else {"linestyle": line, "marker": "o", "markersize": 4}
        )
        axes[0].plot(x, [np.nan if v is None else v for v in values], label=name, **look)
    axes[0].set_ylabel("mean value (reward units; rates in [0, 1])")
    axes[0].legend(fontsize=8, ncol=2, loc="best")
    axes[0].grid(alpha=0.3)
    axes[0].set_title(f"reward components by {by}")
    axes[1].plot(
        x,
        [r["mean_length"] for r in rows],
        linestyle=line,
        marker="o",
        color="tab:purple",
        label="mean length",
        markersize=4,
    )
    axes[1].set_ylabel(f"mean completion length ({unit})")
    twin = axes[1].twinx()
    twin.plot(
        x,
        [r["truncation_rate"] for r in rows],
        linestyle=line,
        marker="s",
        color="tab:orange",
        label="truncation rate",
        markersize=4,
    )
    twin.set_ylabel("truncation rate (share)")
    twin.set_ylim(-0.02, 1.02)
    axes[1].legend(handles=axes[1].lines + twin.lines, fontsize=8, loc="best")
    axes[1].grid(alpha=0.3)
    axes[1].set_xlabel(by)
    if numeric:
        from matplotlib.ticker import MaxNLocator

        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        axes[1].set_xticks(x, keys)
    return _save(fig, path)


def plot_length_histogram(run: ScoredRollouts, path: Path) -> Path:
    """Length distribution of correct, incorrect and truncated rollouts."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    bins = np.histogram_bin_edges(run.length, bins=min(40, max(5, len(run) // 10))) if len(run) else 10
    for name, mask, color in [
        ("correct", run.correct == 1.0, "tab:green"),
        ("incorrect", run.correct == 0.0, "tab:red"),
        ("unknown correctness", np.isnan(run.correct), "tab:gray"),
    ]:
        if mask.any():
            ax.hist(run.length[mask], bins=bins, alpha=0.5, color=color, label=f"{name} (n={int(mask.sum())})")
    if run.truncated.any():
        ax.hist(
            run.length[run.truncated],
            bins=bins,
            histtype="step",
            color="black",
            linewidth=1.5,
            label=f"truncated (n={int(run.truncated.sum())})",
        )
    ax.set_xlabel(f"completion length ({run.unit})")
    ax.set_ylabel("rollouts")
    ax.set_title("length distribution by outcome")
    ax.legend(fontsize=8)
    return _save(fig, path)
