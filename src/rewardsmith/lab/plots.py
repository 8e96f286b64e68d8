"""The lab report's plots (matplotlib, Agg). Each ``plot_*`` returns its Figure (``None`` when there
is nothing to draw) so tests can inspect the axes; :func:`save` writes and closes it.

Rules every plot keeps: names sit in a legend (never as free text that can overlap), axes span
the data (accuracy axes inside [0, 1]), and a panel without data is not drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .intervals import Estimate
from .study import NEG_ADV_KEY, curve_bands, difficulty_order, pareto_points

MARKERS = "os^Dv<>pPXh*"
COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")  # C7 (gray) is the base policy's


def _style(i: int) -> dict[str, Any]:
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)]}


def _limits(lo: float, hi: float, pad: float = 0.05, floor: float | None = None, ceil: float | None = None):
    span = hi - lo
    margin = pad * span if span > 0 else pad * max(abs(hi), 1.0)
    a, b = lo - margin, hi + margin
    if floor is not None:
        a = max(a, floor)
    if ceil is not None:
        b = min(b, ceil)
    return a, b


def _errs(e: Estimate) -> tuple[float, float]:
    """(below, above) error-bar lengths; 0 without an interval."""
    if not e.has_interval or e.value is None:
        return 0.0, 0.0
    return max(e.value - e.low, 0.0), max(e.high - e.value, 0.0)


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    return fig, axes


def _legend_right(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _acc_tokens_panel(ax, results: dict[str, Any], mode: str, smoke: bool) -> bool:
    specs = results["specs"]
    xs, ys = [], []
    for i, (name, agg) in enumerate(specs.items()):
        ev = agg if mode == "greedy" else agg.get(mode)
        if not ev or ev.get("accuracy") is None:
            continue
        acc = Estimate.from_dict(ev["intervals"]["accuracy"])
        tok = Estimate.from_dict(ev["intervals"]["mean_tokens"])
        if not acc.has_interval:  # one seed: the accuracy's binomial interval over its problems
            from .intervals import wilson

            acc = wilson(round(ev["accuracy"] * ev["n"]), ev["n"])
        (ylo, yhi), (xlo, xhi) = _errs(acc), _errs(tok)
        ax.errorbar(
            ev["mean_tokens"],
            ev["accuracy"],
            yerr=[[ylo], [yhi]],
            xerr=[[xlo], [xhi]],
            linestyle="none",
            capsize=3,
            markersize=8 if name == results["baseline"] else 6,
            label=name + (" (baseline)" if name == results["baseline"] else ""),
            **_style(i),
        )
        xs += [ev["mean_tokens"] - xlo, ev["mean_tokens"] + xhi]
        ys += [ev["accuracy"] - ylo, ev["accuracy"] + yhi]
    if not xs:
        return False
    bp = results.get("base_policy") or {}
    bev = bp if mode == "greedy" else bp.get(mode)
    if bev and bev.get("accuracy") is not None:
        ax.scatter(bev["mean_tokens"], bev["accuracy"], marker="x", color="gray", label="base policy (no RL)")
        xs.append(bev["mean_tokens"])
        ys.append(bev["accuracy"])
    need = results["necessary_tokens"]["mean_tokens"]
    if need:
        ax.axvline(need, color="red", linestyle=":", linewidth=1, label="necessary steps only")
        xs.append(need)
    if not smoke:
        front = pareto_points(specs, mode)
        if len(front) >= 2:
            ax.plot(
                [t for _, t in front],
                [a for a, _ in front],
                "--",
                color="black",
                linewidth=0.8,
                label="front of the means",
            )
    ax.set_xlim(*_limits(min(xs), max(xs), floor=0.0))
    ax.set_ylim(*_limits(min(ys), max(ys), floor=0.0, ceil=1.0))
    ax.set_xlabel("mean completion tokens (held-out)")
    ax.set_ylabel("accuracy")
    n = len(results["seeds"])
    what = f"mean over {n} seeds, 95% t-intervals" if n > 1 else "one seed; accuracy: 95% Wilson interval"
    ax.set_title(f"{mode} — {what}", fontsize=9)
    return True


def plot_accuracy_vs_tokens(results: dict[str, Any]):
    """Accuracy against mean tokens per spec with error bars on both axes (greedy, and sampled when
    evaluated); the front of the means is drawn unless the preset is a smoke test."""
    modes = ["greedy"] + (["sampled"] if any("sampled" in a for a in results["specs"].values()) else [])
    fig, axes = _figure(1, len(modes), (6.5 * len(modes) + 2, 4.8))
    drawn = [_acc_tokens_panel(ax, results, m, bool(results.get("smoke"))) for ax, m in zip(axes[0], modes)]
    if not any(drawn):
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    for ax, ok in zip(axes[0], drawn):
        if not ok:
            fig.delaxes(ax)
    _legend_right(fig, axes[0][len(modes) - 1] if drawn[-1] else axes[0][0])
    fig.tight_layout()
    return fig


def plot_by_difficulty(results: dict[str, Any]):
    """Per difficulty: accuracy (pooled over seeds, Wilson intervals) and mean tokens (t-intervals)
    of every spec, points dodged sideways; the necessary-steps length as a reference."""
    runs = [("base (no RL)", results["base_policy"])] if results.get("base_policy") else []
    runs += list(results["specs"].items())
    levels = difficulty_order(list({k for _, r in runs for k in r.get("by_difficulty", {})}))
    if not levels or not runs:
        return None
    fig, axes = _figure(2, 1, (10, 7))
    width = 0.8 / len(runs)
    acc_lo, acc_hi, tok_lo, tok_hi = 1.0, 0.0, float("inf"), 0.0
    for i, (name, r) in enumerate(runs):
        pts = [(j, r["by_difficulty"][k]) for j, k in enumerate(levels) if k in r["by_difficulty"]]
        x = [j + (i - (len(runs) - 1) / 2) * width for j, _ in pts]
        style = {"color": "gray", "marker": "x"} if name == "base (no RL)" else _style(i)
        for ax, key in zip(axes[:, 0], ("accuracy", "mean_tokens")):
            ests = [Estimate.from_dict(c["intervals"][key]) if "intervals" in c else Estimate(c[key]) for _, c in pts]
            vals = [c[key] for _, c in pts]
            errs = [_errs(e) for e in ests]
            ax.errorbar(
                x,
                vals,
                yerr=[[e[0] for e in errs], [e[1] for e in errs]],
                linestyle="none",
                capsize=2,
                markersize=5,
                label=name,
                **style,
            )
            lows = [v - e[0] for v, e in zip(vals, errs)]
            highs = [v + e[1] for v, e in zip(vals, errs)]
            if key == "accuracy":
                acc_lo, acc_hi = min(acc_lo, *lows), max(acc_hi, *highs)
            else:
                tok_lo, tok_hi = min(tok_lo, *lows), max(tok_hi, *highs)
    nec = results["necessary_tokens"]["by_difficulty"]
    shown = [(j, nec[k]) for j, k in enumerate(levels) if k in nec]
    if shown:
        axes[1, 0].scatter(
            [j for j, _ in shown], [v for _, v in shown], marker="_", s=500, color="black", label="necessary steps"
        )
        tok_lo, tok_hi = min(tok_lo, *(v for _, v in shown)), max(tok_hi, *(v for _, v in shown))
    axes[0, 0].set_ylim(*_limits(acc_lo, acc_hi, floor=0.0, ceil=1.0))
    axes[1, 0].set_ylim(*_limits(tok_lo, tok_hi, floor=0.0))
    axes[0, 0].set_ylabel("accuracy (95% Wilson, pooled over seeds)")
    axes[1, 0].set_ylabel("mean tokens")
    for ax in axes[:, 0]:
        ax.set_xticks(range(len(levels)), [f"k={k}" for k in levels])
        ax.set_xlim(-0.5, len(levels) - 0.5)
    axes[1, 0].set_xlabel("difficulty")
    _legend_right(fig, axes[0, 0])
    if shown:  # the specs are named in the upper legend; this one names the reference only
        axes[1, 0].legend(
            handles=[axes[1, 0].collections[-1]],
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
        )
    fig.tight_layout()
    return fig


def plot_length_accuracy(study: dict[str, Any]):
    """(b) one panel per difficulty with data: accuracy per length bin (Wilson intervals; the bar
    spans the bin's lengths), the peak bin marked."""
    per = {k: e for k, e in study["by_difficulty"].items() if e["bins"]}
    if not per:
        return None
    ncols = min(3, len(per))
    nrows = -(-len(per) // ncols)
    fig, axes = _figure(nrows, ncols, (4.2 * ncols, 3.2 * nrows))
    flat = list(axes.flat)
    for ax, (k, e) in zip(flat, per.items()):
        bins = e["bins"]
        mids = [(b["low"] + b["high"]) / 2 for b in bins]
        ax.errorbar(
            mids,
            [b["accuracy"] for b in bins],
            xerr=[[m - b["low"] for m, b in zip(mids, bins)], [b["high"] - m for m, b in zip(mids, bins)]],
            yerr=[
                [b["accuracy"] - b["ci_low"] for b in bins],
                [b["ci_high"] - b["accuracy"] for b in bins],
            ],
            marker="o",
            capsize=2,
            color="C0",
            label="accuracy per length bin",
        )
        p = bins[e["peak"]]
        ax.scatter([mids[e["peak"]]], [p["accuracy"]], marker="*", s=150, color="C3", zorder=3, label="peak bin")
        ax.set_ylim(*_limits(min(b["ci_low"] for b in bins), max(b["ci_high"] for b in bins), floor=0.0, ceil=1.0))
        ax.set_xlim(*_limits(min(b["low"] for b in bins), max(b["high"] for b in bins), floor=0.0))
        verdict = {True: "inverted U", False: "no inverted U", None: "too few bins"}[e["inverted_u"]]
        ax.set_title(f"k={k}: {verdict}", fontsize=9)
        ax.set_xlabel("completion tokens")
        ax.set_ylabel("accuracy")
    for ax in flat[len(per) :]:
        fig.delaxes(ax)
    _legend_right(fig, flat[ncols - 1])
    fig.suptitle(f"accuracy against length per difficulty — {study['spec']}, {study['mode']} completions", fontsize=10)
    fig.tight_layout()
    return fig


CURVE_PANELS = (
    ("accuracy", "rollout accuracy"),
    ("mean_tokens", "mean completion tokens"),
    ("excess_tokens", "tokens beyond the necessary trace"),
    ("redundant_share", "share of redundant steps"),
    (NEG_ADV_KEY, "correct rollouts with negative advantage"),
)
SHARE_KEYS = frozenset({"accuracy", "redundant_share", NEG_ADV_KEY})


def plot_curves(results: dict[str, Any], specs: Sequence[str] | None = None, title: str = "training curves"):
    """Per GRPO step, mean over seeds with a 95% band (t over seeds; a line alone with one seed), one
    panel per logged quantity that any of ``specs`` logged."""
    names = [n for n in (specs or list(results["specs"])) if n in results["specs"]]
    panels = []
    for key, label in CURVE_PANELS:
        series = {n: curve_bands(results, n, key) for n in names}
        series = {n: s for n, s in series.items() if s}
        if series:
            panels.append((key, label, series))
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(nrows, ncols, (4.8 * ncols + 1.5, 3.4 * nrows))
    flat = list(axes.flat)
    order = {n: i for i, n in enumerate(results["specs"])}
    for ax, (key, label, series) in zip(flat, panels):
        lo, hi, steps = float("inf"), float("-inf"), []
        for n, band in series.items():
            x = [s for s, _ in band]
            y = [e.value for _, e in band]
            style = _style(order[n])
            ax.plot(x, y, color=style["color"], linewidth=1.3, label=n)
            banded = [(s, e) for s, e in band if e.has_interval]
            if banded:
                ax.fill_between(
                    [s for s, _ in banded],
                    [e.low for _, e in banded],
                    [e.high for _, e in banded],
                    color=style["color"],
                    alpha=0.15,
                    linewidth=0,
                )
            vals = y + [e.low for _, e in banded] + [e.high for _, e in banded]
            lo, hi, steps = min(lo, *vals), max(hi, *vals), steps + x
        share = key in SHARE_KEYS
        ax.set_ylim(*_limits(lo, hi, floor=0.0, ceil=1.0 if share else None))
        ax.set_xlim(*_limits(min(steps), max(steps), pad=0.02))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if share:
            ax.set_ylabel("accuracy" if key == "accuracy" else "share")
    for ax in flat[len(panels) :]:
        fig.delaxes(ax)
    _legend_right(fig, flat[min(ncols, len(panels)) - 1])
    n = len(results["seeds"])
    fig.suptitle(f"{title} (sampled rollouts; " + (f"mean ± 95% band over {n} seeds)" if n > 1 else "one seed)"))
    fig.tight_layout()
    return fig


def save(fig, path: Path) -> bool:
    """Write ``fig`` to ``path`` and close it; False (nothing written) for a missing figure."""
    if fig is None:
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
