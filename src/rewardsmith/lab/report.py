"""The lab's outputs: ``results.json`` (layout in :mod:`rewardsmith.lab.study`), ``report.md`` (the study:
results with intervals over seeds, questions (a)–(d), a conclusion drawn only from supported claims),
one ``seeds/<seed>/report.md`` per seed (that seed's tables and plain-words reading) and the plots of
:mod:`rewardsmith.lab.plots`.

A smoke-test preset (``tiny``) says so at the top of its report and names no best spec, front or
recommendation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .intervals import Estimate
from .study import CHECK_RATES, KEEP_MARGIN, MIN_BIN, difficulty_order, family, is_drpo, verdict

SMOKE_BANNER = (
    "> **Smoke test.** This preset only checks that the lab runs end to end; its policy is too small and "
    "too briefly trained to learn the task, so its numbers say nothing about the specs: no best spec, front "
    "or recommendation is drawn. Compare specs with `--preset quick` or `--preset study`."
)
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
    if others and not results.get("smoke"):
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


def seed_markdown(results: dict[str, Any]) -> str:
    """One seed's report (``results``: that seed's run dict with ``preset`` and ``smoke`` added)."""
    rows = summary_rows(results)
    lines = [
        f"# Overthinking lab — preset `{results['preset']}`, seed {results['seed']}",
        "",
        *([SMOKE_BANNER, ""] if results.get("smoke") else []),
        f"{len(results['specs'])} reward specs, each GRPO-trained from this seed's base policy with the same "
        "prompts and budget; "
        f"evaluated greedily on {results['base_policy']['n']} held-out problems in {results['seconds']:.0f} s. "
        "The study over all seeds, with intervals, is in [../../report.md](../../report.md).",
        "",
    ]
    if not results.get("smoke"):
        lines += ["## Reading of this seed", "", *[f"- {c}" for c in conclusion(results)]]
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


# --- the study over seeds ----------------------------------------------------------------------


def _ci(d: dict[str, Any] | None, scale: float = 1.0, fmt: str = ".3f", signed: bool = False) -> str:
    """``value [low, high]`` of an interval dict; the value alone (with why) when there is none."""
    if not d or d.get("value") is None:
        return "–"
    f = ("+" if signed else "") + fmt
    text = format(scale * d["value"], f)
    if d.get("low") is None:
        return text
    return f"{text} [{format(scale * d['low'], f)}, {format(scale * d['high'], f)}]"


def _supported(e: dict[str, Any] | None) -> str:
    """How the interval of a change reads: 'up', 'down', 'no clear change' or 'no interval'."""
    est = Estimate.from_dict(e) if e else Estimate(None)
    return {1: "up", -1: "down", 0: "no clear change", None: "no interval"}[est.sign()]


def _interval_kind(results: dict[str, Any]) -> str:
    n = len([s for s in results["runs"].values() if "base_policy" in s])
    if n > 1:
        return (
            f"mean over {n} seeds; overall numbers with 95% t-intervals over seeds (df = {n - 1}), per-difficulty "
            "accuracy with 95% Wilson intervals on the counts pooled over seeds; changes are paired by seed "
            "against the correctness-only run of the same seed (t-interval of the per-seed differences)"
        )
    return (
        "**one seed: no interval over seeds.** Per-difficulty accuracy has 95% Wilson intervals over the "
        "held-out problems; changes are paired by problem within the seed, so their intervals cover the "
        "evaluation's noise only, not how much another seed would differ"
    )


def terminal_table(results: dict[str, Any]) -> str:
    """The headline table for the terminal (means; changes with their 95% intervals)."""
    head = f"{'spec':<18} {'acc':>6} {'tokens':>7}  {'Δacc pts [95%]':<22} {'Δhard pts [95%]':<22} {'token change [95%]':<22}"
    lines = [head, "-" * len(head)]
    bp = results.get("base_policy") or {}
    if bp.get("accuracy") is not None:
        lines.append(f"{'(base, no RL)':<18} {bp['accuracy']:>6.3f} {bp['mean_tokens']:>7.1f}")
    for name, a in results["specs"].items():
        vs = {} if name == results["baseline"] else a.get("vs_baseline", {})
        lines.append(
            f"{name[:18]:<18} {a['accuracy']:>6.3f} {a['mean_tokens']:>7.1f}  "
            f"{_ci(vs.get('accuracy'), 100, '.1f', True):<22} {_ci(vs.get('hardest_accuracy'), 100, '.1f', True):<22} "
            f"{_ci(vs.get('token_change'), 100, '.0f', True):<22}"
        )
    return "\n".join(lines)


def _headline(results: dict[str, Any]) -> list[str]:
    hard = results["hardest"]
    lines = [
        f"| spec | family | seeds | accuracy | mean tokens | Δ accuracy (points) | Δ accuracy k={hard} (points) "
        "| token change (%) |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    bp = results.get("base_policy") or {}
    if bp.get("accuracy") is not None:
        lines.append(
            f"| (base policy, no RL) | | {bp['n_seeds']} | {_ci(bp['intervals']['accuracy'])} | "
            f"{_ci(bp['intervals']['mean_tokens'], fmt='.1f')} | | | |"
        )
    for name, a in results["specs"].items():
        vs = a.get("vs_baseline", {})
        fam = "baseline" if name == results["baseline"] else (family(a["spec"], name) or "other")
        fam = "DRPO" if is_drpo(a["spec"]) else fam
        lines.append(
            f"| {name} | {fam} | {a['n_seeds']} | {_ci(a['intervals']['accuracy'])} | "
            f"{_ci(a['intervals']['mean_tokens'], fmt='.1f')} | "
            + " | ".join(
                "–" if name == results["baseline"] else _ci(vs.get(k), 100, f, True)
                for k, f in (("accuracy", ".1f"), ("hardest_accuracy", ".1f"), ("token_change", ".0f"))
            )
            + " |"
        )
    return lines


def _bucket_table(results: dict[str, Any], key: str) -> list[str]:
    rows = [("(base policy)", results.get("base_policy") or {})] + list(results["specs"].items())
    levels = difficulty_order(list({k for _, r in rows for k in r.get("by_difficulty", {})}))
    fmt = ".2f" if key == "accuracy" else ".1f"
    lines = ["| spec | " + " | ".join(f"k={k}" for k in levels) + " |", "|---|" + "---|" * len(levels)]
    for name, r in rows:
        by = r.get("by_difficulty", {})
        lines.append(
            f"| {name} | "
            + " | ".join(_ci(by[k]["intervals"][key], fmt=fmt) if k in by else "–" for k in levels)
            + " |"
        )
    if key == "mean_tokens":
        nec = results["necessary_tokens"]["by_difficulty"]
        lines.append(
            "| (necessary steps only) | " + " | ".join(f"{nec[k]:.1f}" if k in nec else "–" for k in levels) + " |"
        )
    return lines


def _selectivity_section(results: dict[str, Any]) -> list[str]:
    """Where each policy checks: after the steps it slipped on, and after the steps it wrote right."""
    rows = [("(base policy, no RL)", results.get("base_policy") or {}), *results["specs"].items()]
    modes = [("greedy", lambda r: r), ("sampled", lambda r: r.get("sampled") or {})]

    def cell(r: dict[str, Any], key: str) -> str:
        return _ci(r.get("intervals", {}).get(key), fmt=".2f")

    if not any(get(r).get(k) is not None for _, r in rows for _, get in modes for k in CHECK_RATES):
        return []
    lines = [
        "## Check selectivity",
        "",
        "Share of the slipped steps followed by their repairing check, and of the steps written right followed "
        "by a re-check (mean over seeds). A policy that checks where it errs has the first near 1 and the second "
        "near 0; a length reward that lowers both together drops repairs with the redundancy.",
        "",
        "| spec | greedy: slipped steps checked | greedy: right steps re-checked | sampled: slipped steps checked "
        "| sampled: right steps re-checked |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | " + " | ".join(cell(get(r), k) for _, get in modes for k in CHECK_RATES) + " |")
    return [*lines, "", *_slip_position_lines(rows), *_competence_lines(results.get("base_policy") or {})]


def _slip_position_lines(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Slipped steps repaired by the step's position: which checks a reward removed (lab.evaluate.score_generations)."""
    base = rows[0][1].get("sampled") or {}
    table = [("(base policy, no RL; sampled)", base.get("slip_checks_by_step") or {})] + [
        (name, r.get("slip_checks_by_step") or {}) for name, r in rows[1:]
    ]
    steps = difficulty_order(list({k for _, by in table for k in by}))
    if not steps:
        return []
    lines = [
        "Slipped steps followed by their repairing check, by the step's position in the chain (greedy unless said; "
        "pooled over seeds, 95% Wilson; n = slipped steps; –: no slip there, or a run evaluated before this count "
        "was kept): where a reward removed the checks that repair.",
        "",
        "| spec | " + " | ".join(f"step {k}" for k in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for name, by in table:
        cells = [f"{_ci(by[k]['interval'], fmt='.2f')} (n={by[k]['n']})" if k in by else "–" for k in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _competence_lines(base: dict[str, Any]) -> list[str]:
    """Whether the base policy can compute in the concise format at all (lab.evaluate.necessary_trace_errors)."""
    errors = base.get("necessary_trace_errors")
    if not errors or not errors["by_difficulty"]:
        return []
    cells = "; ".join(
        f"k={k} {_ci(c['interval'], fmt='.2f')}" for k, c in errors["by_difficulty"].items() if c["share"] is not None
    )
    return [
        "Can the base policy compute without the redundancy? Teacher-forced on each held-out problem's "
        "necessary trace (steps and repairing checks only), the share of problems where it would write a wrong "
        f"digit (95% Wilson, pooled over seeds): {cells}. Where this is high, a length reward that removes the "
        "redundancy pushes the policy into a format it cannot compute in, and its losses say little about the reward.",
        "",
    ]


def _names(names: list[str]) -> str:
    return ", ".join(f"**{n}**" for n in names) if names else "none"


def _families_section(results: dict[str, Any]) -> list[str]:
    fam = results["study"]["families"]
    hard = results["hardest"]
    lines = [
        "## (a) Uniform against difficulty-aware length penalties",
        "",
        f"Uniform: {_names([n for n, v in fam.items() if v['family'] == 'uniform'])}; difficulty-aware: "
        f"{_names([n for n, v in fam.items() if v['family'] == 'difficulty-aware'])}. "
        f"Hardest bucket: k={hard}. A change is claimed only when its 95% interval excludes 0; "
        f"accuracy counts as kept when the interval of its change lies above −{100 * KEEP_MARGIN:.0f} points.",
        "",
        "Accuracy per difficulty (95% Wilson interval, pooled over seeds):",
        "",
        *_bucket_table(results, "accuracy"),
        "",
        "Mean tokens per difficulty (95% t-interval over seeds):",
        "",
        *_bucket_table(results, "mean_tokens"),
        "",
        "![accuracy and tokens by difficulty](by_difficulty.png)",
        "",
    ]
    if not fam:
        return [*lines, "No uniform or difficulty-aware length spec was run.", ""]
    if results.get("smoke"):
        return [*lines, "Smoke test: no finding is drawn.", ""]
    if any(v["cuts_tokens"] is None for v in fam.values()):
        lines.append(
            "Some specs have no interval for their changes (see the headline table): no claim is made for them."
        )
    for label in ("uniform", "difficulty-aware"):
        group = {n: v for n, v in fam.items() if v["family"] == label}
        if not group:
            continue
        cut = [n for n, v in group.items() if v["cuts_tokens"]]
        lost = [n for n, v in group.items() if v["loses_hardest"]]
        lines.append(
            f"- {label.capitalize()}: cut tokens (supported): {_names(cut)}; lost hardest-bucket accuracy "
            f"(supported): {_names(lost)}."
        )
    kept = [n for n, v in fam.items() if v["family"] == "difficulty-aware" and v["cuts_tokens"] and v["keeps_hardest"]]
    aware = [n for n, v in fam.items() if v["family"] == "difficulty-aware"]
    if kept:
        lines.append(f"- Difficulty-aware specs that cut tokens while keeping hardest-bucket accuracy: {_names(kept)}.")
    elif aware:
        lines.append(
            "- **No difficulty-aware spec both cut tokens and kept hardest-bucket accuracy** at this scale "
            "(or the intervals are too wide to say so)."
        )
    return [*lines, ""]


def _length_section(results: dict[str, Any]) -> list[str]:
    la = results["study"]["length_accuracy"]
    lines = [
        "## (b) Accuracy against chain length per difficulty",
        "",
        f"Completions of **{la['spec']}** ({la['mode']}, one per held-out problem, pooled over seeds), split per "
        f"difficulty into equal-count length bins (≥ {MIN_BIN} completions when possible). An inverted U is claimed "
        "when the most accurate bin is an interior one and beats both the shortest and the longest bin "
        "(Newcombe 95% intervals of the differences exclude 0). The peak is picked from the data, so its "
        "advantage is optimistic; lengths also differ in *what* was written (checks vs restatements).",
        "",
        "| difficulty | bins (tokens: accuracy [95%], n) | peak bin (tokens) | inverted U |",
        "|---|---|---|---|",
    ]
    per = la["by_difficulty"]
    if not per:
        return [*lines[:2], "No per-completion data were recorded (results from an older version).", ""]
    for k, e in per.items():
        bins = "; ".join(
            f"{b['low']}–{b['high']}: {b['accuracy']:.2f} [{b['ci_low']:.2f}, {b['ci_high']:.2f}], {b['n']}"
            for b in e["bins"]
        )
        peak = "–" if e["peak"] is None else "{low}–{high}".format(**e["bins"][e["peak"]])
        shape = {True: "yes", False: "not supported", None: "too few completions for 3 bins"}[e["inverted_u"]]
        lines.append(f"| k={k} | {bins} | {peak} | {shape} |")
    shown = [k for k, e in per.items() if e["inverted_u"]]
    if results.get("smoke"):
        return [
            *lines,
            "",
            "Smoke test: no finding is drawn.",
            "",
            "![accuracy against length](length_accuracy.png)",
            "",
        ]
    lines += [
        "",
        f"Inverted U supported at: {', '.join(f'k={k}' for k in shown) or 'no difficulty'}. "
        + (
            "The peak bin's length grows with difficulty."
            if la["peak_grows"]
            else "The peak bin's length does not grow monotonically with difficulty."
        )
        + (
            ""
            if len(shown) >= 2
            else " With fewer than two difficulties showing an inverted U, the optimum's shift is not supported."
        ),
        "",
        "![accuracy against length](length_accuracy.png)",
        "",
    ]
    return lines


def _format_length_section(results: dict[str, Any]) -> list[str]:
    fl = results["study"]["format_length"]
    lines = ["## (c) Format-length (no labels) against correctness-only over training", ""]
    if fl is None:
        return [*lines, "Not run (needs the `format_length` and correctness specs).", ""]
    desc = {
        "accuracy": ("rollout accuracy", 100, ".1f", "points"),
        "mean_tokens": ("rollout tokens", 1, ".1f", "tokens"),
    }
    for phase in () if results.get("smoke") else ("early", "late"):
        parts = []
        for key, (label, scale, fmt, unit) in desc.items():
            e = fl[f"{phase}_{key}"]
            parts.append(f"{label} {_ci(e, scale, fmt, True)} {unit} ({_supported(e)})")
        lines.append(
            f"- {'First' if phase == 'early' else 'Last'} third of the steps, format_length − correctness "
            f"(paired by seed): " + "; ".join(parts) + "."
        )
    lines += ["", "![format-length against correctness](curves_format_length.png)", ""]
    return lines


def _drpo_section(results: dict[str, Any]) -> list[str]:
    d = results["study"]["drpo"]
    lines = ["## (d) DRPO against GRPO with a length reward", ""]
    if not d["drpo_specs"]:
        lines.append("No DRPO spec was run (add one with `objective: {name: drpo, ...}`).")
    lines += [
        "",
        "Share of correct rollouts that received a negative advantage, mean over training steps (95% t over seeds):",
        "",
        "| spec | objective | correct rollouts with negative advantage |",
        "|---|---|---|",
    ]
    for name, e in d["correct_neg_adv_share"].items():
        obj = "DRPO" if name in d["drpo_specs"] else "GRPO"
        lines.append(f"| {name} | {obj} | {'not measured' if e is None else _ci(e)} |")
    lines.append("")
    for pair, vs in d["pairs"].items():
        if vs:
            lines.append(
                f"- {pair} (paired): Δ accuracy {_ci(vs['accuracy'], 100, '.1f', True)} points, Δ k={results['hardest']} "
                f"{_ci(vs['hardest_accuracy'], 100, '.1f', True)} points, token change "
                f"{_ci(vs['token_change'], 100, '.0f', True)}%."
            )
    if any(e is not None for e in d["correct_neg_adv_share"].values()):
        lines += ["", "![share of correct rollouts with negative advantage](curves_drpo.png)"]
    return [*lines, ""]


SELECTIVE_GAP = 0.2  # slipped-step check rate minus right-step re-check rate below which checking is one habit


def _conclusion(results: dict[str, Any]) -> list[str]:
    lines = ["## Conclusion", ""]
    if results.get("smoke"):
        return [*lines, "Smoke test: the lab ran end to end; no spec is named best and nothing is recommended.", ""]
    rec = results["study"]["recommended"]
    base = results["baseline"]
    if rec:
        for n in rec:
            vs = results["specs"][n]["vs_baseline"]
            lines.append(
                f"- Recommended: **{n}** — token change {_ci(vs['token_change'], 100, '.0f', True)}% against "
                f"{base} with accuracy kept (Δ {_ci(vs['accuracy'], 100, '.1f', True)} points; hardest bucket "
                f"{_ci(vs['hardest_accuracy'], 100, '.1f', True)} points; both intervals above −"
                f"{100 * KEEP_MARGIN:.0f})."
            )
    else:
        lines.append(
            f"- No spec is recommended: none has a token cut whose interval lies below 0 together with overall and "
            f"hardest-bucket accuracy changes whose intervals lie above −{100 * KEEP_MARGIN:.0f} points. "
            "More seeds narrow the intervals."
        )
    lost = [n for n, a in results["specs"].items() if verdict(a.get("vs_baseline", {}))["loses_hardest"]]
    if lost:
        lines.append(f"- Lost hardest-bucket accuracy (interval below 0): {_names(lost)}.")
    sampled = (results.get("base_policy") or {}).get("sampled") or {}
    slip, right = sampled.get("slip_check_rate"), sampled.get("right_check_rate")
    if slip is not None and right is not None and slip - right < SELECTIVE_GAP:
        lines.append(
            f"- The base policy hardly checks where it errs: sampled, it checks {slip:.2f} of its slipped steps and "
            f"re-checks {right:.2f} of its right ones, so a length reward prunes repairs with the redundancy "
            "(docs/lab.md: a base policy that checks selectively is what lets a difficulty-aware reward keep "
            "hard problems)."
        )
    return [*lines, ""]


def study_markdown(results: dict[str, Any]) -> str:
    n_ok = len([r for r in results["runs"].values() if "base_policy" in r])
    bp = results.get("base_policy") or {}
    lines = [
        f"# Overthinking lab — preset `{results['preset']}`, {len(results['seeds'])} seed"
        f"{'s' if len(results['seeds']) != 1 else ''}",
        "",
        *([SMOKE_BANNER, ""] if results.get("smoke") else []),
        (
            f"Seeds {', '.join(map(str, results['seeds']))}: each has its own"
            if len(results["seeds"]) > 1
            else f"Seed {results['seeds'][0]}: its"
        )
        + f" base policy (SFT), training prompts and {results['config']['n_test']} held-out problems; every spec "
        "is GRPO-trained from that seed's base policy. "
        f"Greedy evaluation unless marked sampled. Wall time {results['seconds']:.0f} s ({results['device']}, "
        f"{results['threads']} torch threads, {results['cpu_count']} CPUs visible)"
        + (
            f"; this run resumed an earlier one: {n_loaded} (seed, spec) pairs were loaded, not trained."
            if (n_loaded := sum(len(r.get("loaded", [])) for r in results["runs"].values()))
            else "."
        ),
        "",
        f"Intervals: {_interval_kind(results)}.",
        "",
    ]
    if results["failures"]:
        lines += [
            f"**{len(results['failures'])} failed run(s)** (left out of the aggregate; a rerun with the same "
            "`--out` retries them):",
            "",
            *[f"- seed {f['seed']}, {f['spec']} ({f['stage']}): {f['error']}" for f in results["failures"]],
            "",
        ]
    if not bp:
        return "\n".join([*lines, "No seed produced a base policy: nothing to report."]) + "\n"
    lines += [
        *_conclusion(results),
        "## Results",
        "",
        *_headline(results),
        "",
        "![accuracy against tokens](accuracy_vs_tokens.png)",
        "",
        *_families_section(results),
        *_selectivity_section(results),
        *_length_section(results),
        *_format_length_section(results),
        *_drpo_section(results),
        "## Per seed",
        "",
        *[
            f"- seed {s}: [seeds/{s}/report.md](seeds/{s}/report.md)"
            for s, r in results["runs"].items()
            if results["baseline"] in r.get("specs", {})
        ],
        "",
        "## Settings",
        "",
        f"- SFT: `{json.dumps(results['config']['sft'], sort_keys=True)}`",
        f"- GRPO (TRL GRPOTrainer): `{json.dumps(results['config']['rl'], sort_keys=True)}`",
        f"- evaluation: {results['config']['n_test']} held-out problems per seed, at most "
        f"{results['config']['max_new_tokens']} new tokens ({n_ok} of {len(results['seeds'])} seeds evaluated)",
        "",
        "## Specs",
        "",
        *[f"- **{n}** ({a['source']}): `{json.dumps(a['spec'], sort_keys=True)}`" for n, a in results["specs"].items()],
    ]
    return "\n".join(lines) + "\n"


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The report's plots by file name (a plot with nothing to draw is left out)."""
    from .plots import plot_accuracy_vs_tokens, plot_by_difficulty, plot_curves, plot_length_accuracy

    drpo = results["study"]["drpo"]
    figs = {
        "accuracy_vs_tokens.png": plot_accuracy_vs_tokens(results),
        "by_difficulty.png": plot_by_difficulty(results),
        "length_accuracy.png": plot_length_accuracy(results["study"]["length_accuracy"]),
        "curves.png": plot_curves(results),
        "curves_format_length.png": plot_curves(
            results, ["format_length", results["baseline"]], "format-length against correctness-only"
        )
        if results["study"]["format_length"]
        else None,
        "curves_drpo.png": plot_curves(
            results,
            drpo["drpo_specs"]
            + [n for n, e in drpo["correct_neg_adv_share"].items() if e and n not in drpo["drpo_specs"]],
            "DRPO against GRPO",
        )
        if any(e is not None for e in drpo["correct_neg_adv_share"].values())
        else None,
    }
    return {name: f for name, f in figs.items() if f is not None}


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    """Write results.json, report.md, each seed's report and the plots into ``out_dir``; returns
    report.md's path."""
    from .plots import save
    from .run import write_json_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "results.json", results)
    for name, fig in figures(results).items():
        save(fig, out_dir / name)
    for seed, run in results["runs"].items():
        if results["baseline"] in run.get("specs", {}):
            seed_dir = out_dir / "seeds" / seed
            seed_dir.mkdir(parents=True, exist_ok=True)
            (seed_dir / "report.md").write_text(
                seed_markdown({**run, "preset": results["preset"], "smoke": results.get("smoke", False)})
            )
    report = out_dir / "report.md"
    report.write_text(study_markdown(results))
    return report
