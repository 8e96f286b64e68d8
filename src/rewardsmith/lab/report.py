"""The lab's outputs: ``results.json``, ``report.md`` (tables and a plain-words conclusion) and
PNG plots (accuracy vs tokens with the Pareto front, per-difficulty bars, training curves).

``results.json`` contract: ``{"preset": str, "seconds": float, "baseline": name, "specs":
{name: {"accuracy": float in [0, 1], "mean_tokens": float, "by_difficulty": {...}, ...}}}``
plus the base policy, the necessary-trace length, the Pareto front and the configuration.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

COLLAPSE_DROP = (
    0.10  # accuracy drop (absolute) that, with answers shorter than the necessary trace, we call a length collapse
)
KEEP_TOLERANCE = 0.02  # "accuracy kept": within 2 points of the baseline


def standard_error(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` problems."""
    return math.sqrt(max(acc * (1.0 - acc), 0.0) / n) if n > 0 else 0.0


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per spec (baseline first), plus the base policy before RL."""
    base = results["base_policy"]
    rows = [
        {
            "name": "(base policy, no RL)",
            "accuracy": base["accuracy"],
            "se": standard_error(base["accuracy"], base["n"]),
            "mean_tokens": base["mean_tokens"],
            "token_reduction": None,
            "accuracy_change": None,
            "aes": None,
            "redundant_share": base["redundant_share"],
            "no_steps_share": base["no_steps_share"],
            "truncated_share": base["truncated_share"],
            "train_seconds": None,
            "steps_to_halve": None,
        }
    ]
    order = [results["baseline"]] + [n for n in results["specs"] if n != results["baseline"]]
    for name in order:
        r = results["specs"][name]
        rows.append(
            {
                "name": name,
                "accuracy": r["accuracy"],
                "se": standard_error(r["accuracy"], r["n"]),
                "mean_tokens": r["mean_tokens"],
                "token_reduction": r["token_reduction"],
                "accuracy_change": r["accuracy_change"],
                "aes": r["aes"],
                "redundant_share": r["redundant_share"],
                "no_steps_share": r["no_steps_share"],
                "truncated_share": r["truncated_share"],
                "train_seconds": r["train_seconds"],
                "steps_to_halve": steps_to_halve_redundancy(r["curve"]),
            }
        )
    return rows


def steps_to_halve_redundancy(curve: list[dict[str, float]]) -> int | None:
    """The first GRPO step whose sampled rollouts have at most half the redundant-step share of
    the first step's; None if none did (or the first step had none)."""
    first = curve[0].get("redundant_share", 0.0) if curve else 0.0
    if first <= 0:
        return None
    return next((int(c["step"]) for c in curve if c.get("redundant_share", first) <= first / 2), None)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:+.1f}%"


def _pts(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def terminal_table(results: dict[str, Any]) -> str:
    head = (
        f"{'spec':<22} {'acc':>6} {'tokens':>7} {'Δtokens':>8} {'Δacc pts':>8} {'AES':>6} {'redund.':>7} {'guesses':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in summary_rows(results):
        lines.append(
            f"{r['name'][:22]:<22} {r['accuracy']:>6.3f} {r['mean_tokens']:>7.1f} "
            f"{_pct(None if r['token_reduction'] is None else -r['token_reduction']):>8} "
            f"{_pts(r['accuracy_change']):>8} {_num(r['aes']):>6} {r['redundant_share']:>7.2f} "
            f"{r['no_steps_share']:>7.2f}"
        )
    return "\n".join(lines)


def conclusion(results: dict[str, Any]) -> list[str]:
    """The result in plain words, derived from the numbers only."""
    specs, base_name = results["specs"], results["baseline"]
    base = specs[base_name]
    need = results["necessary_tokens"]["mean_tokens"]
    out = [
        f"The correctness-only baseline reached {100 * base['accuracy']:.1f}% held-out accuracy with "
        f"{base['mean_tokens']:.1f} tokens per answer "
        f"(the base policy before RL: {100 * results['base_policy']['accuracy']:.1f}%, "
        f"{results['base_policy']['mean_tokens']:.1f} tokens; "
        f"the necessary steps alone take {need:.1f} tokens)."
    ]
    bp = results["base_policy"]
    if bp["mean_tokens"] > 0 and base["mean_tokens"] < 0.95 * bp["mean_tokens"]:
        out.append(
            "The 0/1 correctness reward alone already shortened answers by "
            f"{100 * (1 - base['mean_tokens'] / bp['mean_tokens']):.0f}% against the base policy "
            f"(redundant steps {100 * bp['redundant_share']:.0f}% → {100 * base['redundant_share']:.0f}% of steps)."
        )
    others = {n: r for n, r in specs.items() if n != base_name}
    out.append(_largest_kept_cut(others, base, "Greedy decoding: l"))
    if "sampled" in base:
        sampled = {n: r["sampled"] for n, r in others.items() if "sampled" in r}
        out.append(
            _largest_kept_cut(
                sampled,
                base["sampled"],
                f"Sampled at temperature {base['sampled']['temperature']:g} (one completion per problem; "
                "shows the redundancy greedy decoding hides): l",
            )
        )
    collapsed = [n for n, r in others.items() if r["accuracy_change"] <= -COLLAPSE_DROP and r["mean_tokens"] < need]
    for n in collapsed:
        r = specs[n]
        out.append(
            f"**{n}** collapsed: answers shorter than the necessary steps ({r['mean_tokens']:.1f} < {need:.1f} "
            "tokens) and accuracy down "
            f"{-100 * r['accuracy_change']:.1f} points to {100 * r['accuracy']:.1f}% — it is rewarded for skipping "
            "work it needs."
        )
    lost = [n for n, r in others.items() if r["accuracy_change"] <= -COLLAPSE_DROP and n not in collapsed]
    if lost:
        out.append(
            "Lost ≥ 10 accuracy points without collapsing below the necessary length: "
            + ", ".join(f"**{n}**" for n in lost)
            + "."
        )
    halved = {n: steps_to_halve_redundancy(r["curve"]) for n, r in specs.items()}
    reached = sorted((s, n) for n, s in halved.items() if s is not None)
    if reached:
        out.append(
            "Speed: the sampled rollouts' share of redundant steps first fell to half its starting value at GRPO step "
            + ", ".join(f"{s} ({n})" for s, n in reached)
            + (
                f"; not within the budget: {', '.join(n for n, s in halved.items() if s is None)}."
                if len(reached) < len(halved)
                else "."
            )
        )
    guessers = [n for n, r in others.items() if r["no_steps_share"] >= 0.05]
    if guessers:
        out.append(
            "Answering without any step (bare guesses) on ≥ 5% of problems: "
            + ", ".join(f"**{n}** ({100 * specs[n]['no_steps_share']:.0f}%)" for n in guessers)
            + "."
        )
    if others:
        best = max(others.items(), key=lambda kv: kv[1]["aes"])
        out.append(
            f"Best AES (α=1, β=3, γ=5, weights unverified): **{best[0]}** ({best[1]['aes']:.2f}). Pareto front "
            f"(accuracy vs tokens): {', '.join(results['pareto_front'])}."
        )
    n_test = base["n"]
    noise = max(2 * standard_error(base["accuracy"], n_test), 3 / n_test) if n_test else 1.0
    out.append(
        f"One seed, {n_test} held-out problems: an accuracy difference under about {100 * noise:.1f} points is within "
        "noise "
        "(2 standard errors at the baseline's accuracy, at least the rule-of-three bound 3/n)."
    )
    return out


def _largest_kept_cut(runs: dict[str, dict[str, Any]], base: dict[str, Any], lead: str) -> str:
    """One sentence on the spec with the largest token cut among those within
    :data:`KEEP_TOLERANCE` of the baseline's accuracy (``runs`` already compared to it)."""
    if not runs:
        return f"{lead}ength-shaped specs: none were run."
    kept = {n: r for n, r in runs.items() if r["accuracy_change"] >= -KEEP_TOLERANCE}
    if not kept:
        return (
            f"{lead}ength-shaped specs all lost more than {100 * KEEP_TOLERANCE:.0f} accuracy points "
            "against the baseline."
        )
    name, r = max(kept.items(), key=lambda kv: kv[1]["token_reduction"])
    if r["token_reduction"] <= 0.05:
        return (
            f"{lead}ength-shaped specs that kept accuracy within {100 * KEEP_TOLERANCE:.0f} points "
            "shortened answers by at most 5%."
        )
    return (
        f"{lead}argest cut with accuracy kept (within {100 * KEEP_TOLERANCE:.0f} points): **{name}** shortened "
        f"answers by {100 * r['token_reduction']:.0f}% "
        f"({base['mean_tokens']:.1f} → {r['mean_tokens']:.1f} tokens) at {100 * r['accuracy']:.1f}% accuracy "
        f"({_pts(r['accuracy_change'])} points); "
        f"redundant steps left: {100 * r['redundant_share']:.0f}% of steps (baseline "
        f"{100 * base['redundant_share']:.0f}%)."
    )


def _difficulty_table(results: dict[str, Any], key: str, fmt: str) -> list[str]:
    levels = list(results["base_policy"]["by_difficulty"])
    lines = ["| spec | " + " | ".join(f"k={k}" for k in levels) + " |", "|---|" + "---:|" * len(levels)]
    rows = [("(base policy)", results["base_policy"])] + list(results["specs"].items())
    for name, r in rows:
        lines.append(
            f"| {name} | "
            + " | ".join(format(r["by_difficulty"][k][key], fmt) if k in r["by_difficulty"] else "–" for k in levels)
            + " |"
        )
    if key == "mean_tokens":
        nec = results["necessary_tokens"]["by_difficulty"]
        lines.append("| (necessary steps only) | " + " | ".join(format(nec[k], fmt) for k in levels) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    rows = summary_rows(results)
    lines = [
        f"# Overthinking lab — preset `{results['preset']}`",
        "",
        f"{len(results['specs'])} reward specs, each GRPO-trained from the same base policy with the same seed, "
        "prompts and budget; "
        f"evaluated greedily on {results['base_policy']['n']} held-out problems. Wall time {results['seconds']:.0f} s "
        f"({results['device']}, {results['threads']} torch threads, {results['cpu_count']} CPUs visible).",
        "",
        "## Conclusion",
        "",
    ]
    lines += [f"- {c}" for c in conclusion(results)]
    lines += [
        "",
        "## Results",
        "",
        "| spec | accuracy | ± SE | mean tokens | token change | Δ accuracy (points) | AES | redundant share | bare "
        "guesses | truncated | redundancy halved at step | RL seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['accuracy']:.3f} | {r['se']:.3f} | {r['mean_tokens']:.1f} | "
            f"{_pct(None if r['token_reduction'] is None else -r['token_reduction'])} | "
            f"{_pts(r['accuracy_change'])} | {_num(r['aes'])} | {r['redundant_share']:.2f} | "
            f"{r['no_steps_share']:.2f} | {r['truncated_share']:.2f} | "
            f"{'–' if r['steps_to_halve'] is None else r['steps_to_halve']} | {_num(r['train_seconds'], '.0f')} |"
        )
    if all("sampled" in r for r in results["specs"].values()) and "sampled" in results["base_policy"]:
        t = results["base_policy"]["sampled"]["temperature"]
        lines += [
            "",
            f"Sampled at temperature {t:g}, one completion per problem (token change and Δ accuracy against the "
            "baseline's sampled run):",
            "",
            "| spec | accuracy | mean tokens | token change | Δ accuracy (points) | redundant share | bare guesses |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        bps = results["base_policy"]["sampled"]
        lines.append(
            f"| (base policy, no RL) | {bps['accuracy']:.3f} | {bps['mean_tokens']:.1f} | – | – | "
            f"{bps['redundant_share']:.2f} | {bps['no_steps_share']:.2f} |"
        )
        for name, r in results["specs"].items():
            sr = r["sampled"]
            lines.append(
                f"| {name} | {sr['accuracy']:.3f} | {sr['mean_tokens']:.1f} | {_pct(-sr['token_reduction'])} | "
                f"{_pts(sr['accuracy_change'])} | "
                f"{sr['redundant_share']:.2f} | {sr['no_steps_share']:.2f} |"
            )
    lines += [
        "",
        "Token change and Δ accuracy are against the correctness-only baseline; AES = α·ΔL + β·ΔAcc (ΔAcc ≥ 0) else "
        "α·ΔL − γ·|ΔAcc| "
        "with relative ΔL, ΔAcc (Ada-R1; α=1, β=3, γ=5 [unverified]). Redundant share = re-checks and restatements / "
        "all steps written; "
        "bare guesses = answers with no step; redundancy halved at step = first GRPO step whose sampled rollouts "
        "had at most half the first step's share of redundant steps.",
        "",
        "![accuracy vs tokens](pareto.png)",
        "",
        "## By difficulty (k = number of terms; k − 1 steps are necessary)",
        "",
        "Accuracy:",
        "",
    ]
    lines += _difficulty_table(results, "accuracy", ".2f")
    lines += ["", "Mean tokens:", ""]
    lines += _difficulty_table(results, "mean_tokens", ".1f")
    lines += [
        "",
        "![per difficulty](by_difficulty.png)",
        "",
        "## Training curves",
        "",
        "Per GRPO step, on the sampled rollouts: mean reward, mean completion tokens, tokens beyond each prompt's "
        "necessary trace (free of the step's difficulty mix), accuracy, share of redundant steps, share of bare "
        "guesses.",
        "",
        "![training curves](curves.png)",
        "",
        "## Specs",
        "",
    ]
    for name, r in results["specs"].items():
        lines += [f"- **{name}** ({r['source']}): `{json.dumps(r['spec'], sort_keys=True)}`"]
    cfg, bp = results["config"], results["base_policy"]
    sft_how = "loaded from cache" if bp["sft_cached"] else f"trained in {bp['sft_seconds']:.0f} s"
    lines += [
        "",
        "## Settings",
        "",
        f"- SFT: `{json.dumps(cfg['sft'], sort_keys=True)}` (cache key `{bp['cache_key']}`, {sft_how})",
        f"- GRPO (TRL GRPOTrainer): `{json.dumps(cfg['rl'], sort_keys=True)}`",
        f"- evaluation: {cfg['n_test']} held-out problems, greedy, at most {cfg['max_new_tokens']} new tokens; seed "
        f"{results['seed']}",
        "",
        "## Sample completions (baseline, then each spec's first held-out problems)",
        "",
    ]
    for name, r in results["specs"].items():
        lines.append(f"- {name}: " + " · ".join(f"`{s['prompt']}{s['completion']}`" for s in r["samples"][:3]))
    return "\n".join(lines) + "\n"


def _pareto_panel(
    ax, points: dict[str, tuple[float, float]], base: tuple[float, float], baseline: str, need: float, title: str
) -> None:
    from .evaluate import pareto_front

    placed: list[tuple[float, float]] = []
    span_t = (
        max((t for _, t in points.values()), default=1.0) - min((t for _, t in points.values()), default=0.0) or 1.0
    )
    span_a = (
        max((a for a, _ in points.values()), default=1.0) - min((a for a, _ in points.values()), default=0.0) or 1.0
    )
    for i, (name, (acc, tok)) in enumerate(points.items()):
        ax.scatter(
            tok,
            acc,
            s=60 if name == baseline else 40,
            marker="*" if name == baseline else "o",
            color=f"C{i % 10}",
            zorder=3,
        )
        crowd = sum(
            abs(tok - t) < 0.04 * span_t and abs(acc - a) < 0.04 * span_a for a, t in placed
        )  # stagger labels of near-identical points
        placed.append((acc, tok))
        ax.annotate(
            name, (tok, acc), textcoords="offset points", xytext=(6, 3 - 10 * crowd), fontsize=8, color=f"C{i % 10}"
        )
    ax.scatter(base[1], base[0], s=40, marker="x", color="gray")
    ax.annotate(
        "base (no RL)", (base[1], base[0]), textcoords="offset points", xytext=(5, -10), fontsize=8, color="gray"
    )
    front = pareto_front(points)
    ax.plot(
        [points[n][1] for n in front],
        [points[n][0] for n in front],
        "--",
        color="black",
        linewidth=1,
        label="Pareto front",
        zorder=2,
    )
    ax.axvline(need, color="red", linestyle=":", linewidth=1, label="necessary steps only")
    ax.set_xlabel("mean completion tokens (held-out)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)


def plot_pareto(results: dict[str, Any], path: Path) -> None:
    """Accuracy vs mean tokens with the Pareto front: greedy, and sampled when evaluated."""
    import matplotlib.pyplot as plt

    specs, bp, need = results["specs"], results["base_policy"], results["necessary_tokens"]["mean_tokens"]
    sampled = "sampled" in bp and all("sampled" in r for r in specs.values())
    fig, axes = plt.subplots(1, 2 if sampled else 1, figsize=(13 if sampled else 7, 5), squeeze=False)
    _pareto_panel(
        axes[0, 0],
        {n: (r["accuracy"], r["mean_tokens"]) for n, r in specs.items()},
        (bp["accuracy"], bp["mean_tokens"]),
        results["baseline"],
        need,
        f"greedy — preset {results['preset']}",
    )
    if sampled:
        t = bp["sampled"]["temperature"]
        _pareto_panel(
            axes[0, 1],
            {n: (r["sampled"]["accuracy"], r["sampled"]["mean_tokens"]) for n, r in specs.items()},
            (bp["sampled"]["accuracy"], bp["sampled"]["mean_tokens"]),
            results["baseline"],
            need,
            f"sampled, temperature {t:g}",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_by_difficulty(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    levels = list(results["base_policy"]["by_difficulty"])
    runs = [("base (no RL)", results["base_policy"])] + list(results["specs"].items())
    x = np.arange(len(levels))
    width = 0.8 / len(runs)
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for i, (name, r) in enumerate(runs):
        bd = r["by_difficulty"]
        for ax, key in zip(axes, ("accuracy", "mean_tokens")):
            ax.bar(
                x + (i - (len(runs) - 1) / 2) * width,
                [bd.get(k, {}).get(key, 0.0) for k in levels],
                width,
                label=name,
                color="lightgray" if i == 0 else None,
            )
    nec = results["necessary_tokens"]["by_difficulty"]
    axes[1].scatter(
        x, [nec[k] for k in levels], marker="_", s=400, color="black", label="necessary steps only", zorder=3
    )
    axes[0].set_ylabel("accuracy")
    axes[1].set_ylabel("mean tokens")
    axes[1].set_xticks(x, [f"k={k}" for k in levels])
    axes[1].set_xlabel("difficulty (number of terms)")
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].legend(handles=axes[1].collections, fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


CURVE_PANELS = (
    ("reward", "mean reward"),
    ("mean_tokens", "mean completion tokens"),
    ("excess_tokens", "tokens beyond the necessary trace"),
    ("accuracy", "rollout accuracy"),
    ("redundant_share", "share of redundant steps"),
    ("no_steps_share", "share of bare guesses"),
)


def plot_curves(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for name, r in results["specs"].items():
        curve = r["curve"]
        steps = [c["step"] for c in curve]
        for ax, (key, _) in zip(axes.flat, CURVE_PANELS):
            ax.plot(steps, [c.get(key, float("nan")) for c in curve], label=name, linewidth=1.2)
    for ax, (_, title) in zip(axes.flat, CURVE_PANELS):
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("training curves (sampled rollouts, temperature 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    """Write results.json, report.md and the plots into ``out_dir``; returns report.md's path."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    plot_pareto(results, out_dir / "pareto.png")
    plot_by_difficulty(results, out_dir / "by_difficulty.png")
    plot_curves(results, out_dir / "curves.png")
    report = out_dir / "report.md"
    report.write_text(markdown(results))
    return report
