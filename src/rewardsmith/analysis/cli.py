"""``rewardsmith audit`` and ``rewardsmith eval ...``: measuring what a reward does (imports stay light).

    rewardsmith audit runs/exp1/scored.jsonl --by step --out runs/exp1/audit
    rewardsmith eval tradeoff base=base.jsonl kimi=kimi.jsonl laser=laser.jsonl --baseline base --k 1 4
    rewardsmith eval lcwr judgements.jsonl
    rewardsmith eval wildbench pairwise.jsonl --margin 500
    rewardsmith eval ruler outputs.jsonl
    rewardsmith eval bon rollouts.jsonl --spec reward.yaml --selected best.jsonl

Every command prints a summary, writes a JSON file (and PNG plots where there are any) into
``--out`` (default ``runs/<command>/<input>-<timestamp>``) and prints where it wrote them.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..cli_args import non_negative_float, non_negative_int, positive_int

UNITS = ("tokens", "words", "chars")
UNIT_HELP = "length unit (default: tokens = num_tokens, falling back to words where absent)"
BREAKDOWNS = ("step", "data_source", "difficulty")
# The audit's flags (as printed) and the threshold (``--threshold NAME=VALUE``) that raises each.
FLAG_THRESHOLDS = {
    "length_hacking": "length_correlation",
    "zero_variance_groups": "zero_variance_share",
    "format_rejects_correct": "format_rejects_correct",
    "format_outpaces_accuracy": "format_gap",
    "truncation": "truncation_rate",
    "repetition": "repetitive_share",
    "reward_without_accuracy": "reward_rise",
    "tool_call_spam": "tool_spam_share",
    "repeated_turns": "repeated_turn_share",
}


def _errors_as_messages(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input (ValueError) becomes a one-line message and exit status 2, like the core CLI."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ValueError as exc:
            name = "audit" if args.command == "audit" else f"eval {args.eval_command}"
            print(f"rewardsmith {name}: error: {exc}", file=sys.stderr)
            return 2

    return wrapper


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="reward-hacking and trade-off diagnostics of scored rollouts, with plots",
        description="Audit scored rollouts (the output of rewardsmith score): "
        "reward/length correlation at equal correctness, "
        "zero-variance groups, format vs correctness, truncation, repetition, component trends. "
        "Writes audit.json and PNG plots.",
    )
    p.add_argument("rollouts", help="scored rollouts (.jsonl/.parquet) with reward, correct, components")
    p.add_argument(
        "--by", choices=BREAKDOWNS, default="step", help="bucket for the per-bucket table and trends (default: step)"
    )
    p.add_argument("--unit", choices=UNITS, default="tokens", help=UNIT_HELP)
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a flag's threshold (repeatable), e.g. length_correlation=0.4 "
        "(defaults and names: docs/analysis.md)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/audit/<input>-<timestamp>)")
    p.set_defaults(func=_errors_as_messages(_cmd_audit))

    e = subparsers.add_parser(
        "eval", help="evaluation metrics: accuracy/length trade-off, LC win rate, WildBench, Ruler, best-of-N"
    )
    es = e.add_subparsers(dest="eval_command", required=True)

    t = es.add_parser(
        "tradeoff",
        help="pass@k, length, token reduction, AES and the Pareto front over runs",
        description="Compare scored runs: pass@1/pass@k, mean/median length per difficulty, "
        "token reduction and AES against a baseline, "
        "accuracy per 1k tokens, and the accuracy-vs-length Pareto front (pareto.png).",
    )
    t.add_argument("runs", nargs="+", metavar="[NAME=]RUN.jsonl", help="scored rollout files, optionally named")
    t.add_argument("--baseline", help="name or path of the baseline run (a path not among RUNS is added)")
    t.add_argument("--k", type=positive_int, nargs="+", default=[1], help="pass@k values (default: 1)")
    t.add_argument(
        "--by",
        choices=("difficulty", "data_source", "step"),
        default="difficulty",
        help="breakdown (default: difficulty = meta.difficulty, else data_source)",
    )
    t.add_argument("--unit", choices=UNITS, default="tokens", help=UNIT_HELP)
    t.add_argument(
        "--aes",
        type=non_negative_float,
        nargs=3,
        default=None,
        metavar=("ALPHA", "BETA", "GAMMA"),
        help="AES weights (default 1 3 5, unverified)",
    )
    t.add_argument("--out", metavar="DIR")
    t.set_defaults(func=_errors_as_messages(_cmd_tradeoff))

    lc = es.add_parser(
        "lcwr",
        help="raw and length-controlled win rate from pairwise judgements (AlpacaEval GLM)",
        description="Judgement JSONL: instruction_id, output_model, output_base, and preference in [0,1] "
        "(or preference_12 in [1,2], or winner model|base|tie); optional model, difficulty, gamed_baseline.",
    )
    lc.add_argument("judgements")
    lc.add_argument("--model", help="only this model (default: every model in the file)")
    lc.add_argument(
        "--folds",
        type=positive_int,
        default=5,
        help="cross-validation folds (one group per annotation row, as AlpacaEval) for the GLM's penalty; "
        "1 = none, C = 100 (default: 5)",
    )
    lc.add_argument(
        "--n-boot",
        type=non_negative_int,
        default=200,
        help="bootstrap resamples for the LC interval; 0 = none (default: 200)",
    )
    lc.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    lc.add_argument(
        "--baseline-weight",
        type=non_negative_float,
        default=0.2,
        help="weight of gamed-baseline rows (default: AlpacaEval's 0.2)",
    )
    lc.add_argument("--out", metavar="DIR")
    lc.set_defaults(func=_errors_as_messages(_cmd_lcwr))

    w = es.add_parser(
        "wildbench",
        help="WB-Reward (pairwise outcomes, length margin K) and WB-Score (1-10 scores)",
        description="Rows with 'outcome' count for WB-Reward, rows with 'score' for WB-Score; "
        "split by 'model' when present.",
    )
    w.add_argument("file")
    w.add_argument(
        "--margin",
        type=non_negative_int,
        default=None,
        metavar="K",
        help="a slight win by an output longer by more than K characters becomes a tie "
        "(default off, the leaderboard script's K=-1)",
    )
    w.add_argument(
        "--conventions",
        choices=("leaderboard", "plain"),
        default="leaderboard",
        help="leaderboard (default): its task-group weights and its handling of truncated/empty outputs; "
        "plain: every row counts, task groups weigh equally",
    )
    w.add_argument("--out", metavar="DIR")
    w.set_defaults(func=_errors_as_messages(_cmd_wildbench))

    r = es.add_parser(
        "ruler",
        help="Ruler Precise/Flexible Match per target length and level",
        description="Rows: completion (or output) and target (10..700 or '>800'; also TargetLength or meta.target).",
    )
    r.add_argument("file")
    r.add_argument("--out", metavar="DIR")
    r.set_defaults(func=_errors_as_messages(_cmd_ruler))

    b = es.add_parser(
        "bon",
        help="best-of-N selection by a reward: accuracy, length, KL and win rate",
        description="Pick the highest-reward rollout per prompt_id (scoring with --spec when given) "
        "and compare it with the mean and the oracle.",
    )
    b.add_argument("rollouts")
    b.add_argument("--spec", help="reward spec to score with (default: use the records' reward)")
    b.add_argument("--selected", metavar="OUT.jsonl", help="also write the selected rollouts here")
    b.add_argument("--out", metavar="DIR")
    b.set_defaults(func=_errors_as_messages(_cmd_bon))


def _wrote(paths: list[Path]) -> None:
    print("wrote:")
    for p in paths:
        print(f"  {p}")


# ---------------------------------------------------------------------------------------- audit
def _parse_thresholds(items: list[str]) -> Any:
    from dataclasses import fields, replace

    from .audit import AuditThresholds

    t = AuditThresholds()
    kinds = {f.name: f.type for f in fields(t)}
    for item in items:
        name, _, text = item.partition("=")
        if name not in kinds or not text:
            hint = (
                f" (the flag {name} is raised by the threshold {FLAG_THRESHOLDS[name]})"
                if name in FLAG_THRESHOLDS
                else ""
            )
            raise ValueError(f"--threshold {item!r}: expected NAME=VALUE with NAME one of {', '.join(kinds)}{hint}")
        kind = int if kinds[name] in (int, "int") else float
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(
                f"--threshold {item!r}: {name} takes {'an integer' if kind is int else 'a number'}"
            ) from None
        t = replace(t, **{name: value})  # AuditThresholds checks the range
    return t


def _cmd_audit(args: argparse.Namespace) -> int:
    from ..records import read_records
    from .audit import audit
    from .files import fmt, output_dir, table, write_json
    from .plots import plot_buckets, plot_length_histogram, plot_reward_vs_length
    from .scored import ScoredRollouts

    thresholds = _parse_thresholds(args.threshold)
    run = ScoredRollouts.from_records(read_records(args.rollouts).records, unit=args.unit)
    result = audit(run, by=args.by, thresholds=thresholds)
    result["source"] = str(args.rollouts)
    out = output_dir(args.out, "audit", Path(args.rollouts).stem)
    m = result["metrics"]
    print(
        f"rewardsmith audit: {result['rollouts']} rollouts, {result['groups']} prompts, accuracy {fmt(result['accuracy'])}, "
        f"mean reward {fmt(result['mean_reward'])}, mean length {fmt(result['mean_length'], '.1f')} {result['unit']}"
    )
    corr = m["reward_length_correlation"]
    print("\nreward vs length")
    print(
        table(
            ["rollouts", "n", "Pearson", "Spearman"],
            [[k, v["n"], v["pearson"], v["spearman"]] for k, v in corr.items()],
            ".2f",
        )
    )
    zv = m["zero_variance_groups"]
    print(
        f"\nzero-variance groups: {zv['zero_variance']} of {zv['groups_of_2_or_more']} with 2+ rollouts "
        f"({zv['all_correct']} all correct, {zv['all_wrong']} all wrong; "
        f"{zv['single_rollout_groups']} single-rollout groups)"
    )
    if m["format"]:
        f = m["format"]
        print(
            f"format: pass rate {fmt(f['format_pass_rate'])}, accuracy {fmt(f['accuracy'])}; pass but wrong {f['pass_but_wrong']}, "
            f"fail but correct {f['fail_but_correct']} (of {f['n']})"
        )
    else:
        print("format: no 'format' component in the records")
    if m["components"]:
        print(
            "components (mean; change over steps): "
            + ", ".join(
                f"{k} {fmt(v['mean'])}; {fmt(v['change_over_steps'], '+.3f')}" for k, v in m["components"].items()
            )
        )
    if "trajectories" in m:
        tj = m["trajectories"]
        print(
            f"trajectories: {tj['trajectories']}, mean tool calls {fmt(tj['mean_tool_calls'], '.2f')}; "
            f"tool-call spam {tj['tool_call_spam']['count']}, repeated turns {tj['repeated_turns']['count']}"
        )
    print("\nflags")
    for flag in result["flags"]:
        mark = "FLAG" if flag["raised"] else (" -- " if flag["value"] is None else " ok ")
        print(f"  [{mark}] {flag['name']}: {flag['explanation']}")
    rows = result["buckets"]
    shown = rows if len(rows) <= 30 else rows[:: -(-len(rows) // 30)]
    print(
        f"\nby {args.by}"
        + (
            f" (every {-(-len(rows) // 30)}th of {len(rows)} shown; all in audit.json)"
            if len(shown) < len(rows)
            else ""
        )
    )
    print(
        table(
            [args.by, "n", "acc", "reward", "length", "ρ(r,len)", "zero-var", "trunc", "format"],
            [
                [
                    r["key"],
                    r["rollouts"],
                    r["accuracy"],
                    r["mean_reward"],
                    r["mean_length"],
                    r["spearman_reward_length"],
                    r["zero_variance_share"],
                    r["truncation_rate"],
                    r["format_pass_rate"],
                ]
                for r in shown
            ],
            ".3g",
        )
    )
    paths = [
        plot_reward_vs_length(run, out / "reward_vs_length.png", corr),
        plot_length_histogram(run, out / "length_histogram.png"),
        plot_buckets(rows, args.by, run.unit, out / f"components_by_{args.by}.png"),
    ]
    result["plots"] = [p.name for p in paths]
    paths.insert(0, write_json(result, out / "audit.json"))
    print()
    _wrote(paths)
    return 0


# ---------------------------------------------------------------------------------------- eval
def _named_runs(items: list[str], baseline: str | None) -> tuple[dict[str, Path], str | None]:
    """``[NAME=]PATH`` arguments as {name: path}; names default to file stems, made unique."""
    runs: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or Path(item).exists():
            name, path = "", item
        p = Path(path)
        name = name or p.stem
        if name in runs:
            name = f"{p.parent.name}/{p.stem}"
        base_name, k = name, 2
        while name in runs:
            name, k = f"{base_name}#{k}", k + 1
        runs[name] = p
    if baseline is None or baseline in runs:
        return runs, baseline
    for name, p in runs.items():
        if Path(baseline).resolve() == p.resolve():
            return runs, name
    if not Path(baseline).exists():
        raise ValueError(f"--baseline {baseline!r} is neither a run name ({', '.join(runs)}) nor a file")
    name = Path(baseline).stem if Path(baseline).stem not in runs else f"baseline:{Path(baseline).stem}"
    return {name: Path(baseline), **runs}, name


def _cmd_tradeoff(args: argparse.Namespace) -> int:
    from ..records import read_records
    from .files import fmt, output_dir, table, write_json
    from .plots import plot_breakdown, plot_pareto
    from .scored import ScoredRollouts
    from .tradeoff import AES_ALPHA, AES_BETA, AES_GAMMA, compare_runs

    paths, baseline = _named_runs(args.runs, args.baseline)
    runs = {name: ScoredRollouts.from_records(read_records(p).records, unit=args.unit) for name, p in paths.items()}
    alpha, beta, gamma = args.aes or (AES_ALPHA, AES_BETA, AES_GAMMA)
    result = compare_runs(runs, baseline, args.k, args.by, alpha, beta, gamma)
    result["sources"] = {n: str(p) for n, p in paths.items()}
    unit, ks, front = result["unit"], result["ks"], result["pareto_front"]
    header = [
        "run",
        "rollouts",
        "prompts",
        *(f"pass@{k}" for k in ks),
        f"mean {unit}",
        f"median {unit}",
        f"acc/1k {unit}",
    ]
    if baseline:
        header += ["Δlength %", "Δacc pts", "AES"]
    rows = []
    for name, s in result["runs"].items():
        row = [
            name + (" *" if name in front else ""),
            s["rollouts"],
            s["prompts"],
            *(s[f"pass@{k}"] for k in ks),
            s["mean_length"],
            s["median_length"],
            s["accuracy_per_1k"],
        ]
        if baseline:
            row += [
                None if s["token_reduction"] is None else 0.0 - 100 * s["token_reduction"],
                None if s["accuracy_change"] is None else 100 * s["accuracy_change"],
                s["aes"],
            ]
        rows.append(row)
    print(
        f"rewardsmith eval tradeoff: {len(runs)} runs, length in {unit}"
        + (f", baseline {baseline}" if baseline else "")
        + " (* = on the Pareto front)"
    )
    print(table(header, rows, ".3g"))
    print(f"\nby {args.by} (pass@1 / mean {unit})")
    labels: list[str] = []
    for s in result["runs"].values():
        labels += [k for k in s["breakdown"] if k not in labels]
    print(
        table(
            [args.by, *result["runs"]],
            [
                [
                    lab,
                    *(
                        f"{fmt(s['breakdown'][lab]['pass@1'])} / {fmt(s['breakdown'][lab]['mean_length'], '.1f')}"
                        if lab in s["breakdown"]
                        else "–"
                        for s in result["runs"].values()
                    ),
                ]
                for lab in labels
            ],
        )
    )
    if baseline:
        print(f"\nAES weights α={alpha:g}, β={beta:g}, γ={gamma:g} (Ada-R1, unverified)")
    print(f"Pareto front (accuracy up, {unit} down): {', '.join(front) or 'none'}")
    out = output_dir(args.out, "tradeoff", "-".join(list(runs)[:3]).replace("/", "_"))
    points = {
        n: (s["pass@1"], s["mean_length"])
        for n, s in result["runs"].items()
        if s["pass@1"] is not None and s["mean_length"] is not None
    }
    written = [write_json(result, out / "tradeoff.json")]
    if points:
        written.append(plot_pareto(points, front, unit, out / "pareto.png", baseline))
    written.append(plot_breakdown(result["runs"], args.by, unit, out / f"by_{args.by}.png"))
    print()
    _wrote(written)
    return 0


def _cmd_lcwr(args: argparse.Namespace) -> int:
    from .files import output_dir, table, write_json
    from .lc_winrate import length_controlled_win_rate, read_judgements

    judgements = read_judgements(args.judgements)
    if not judgements:
        raise ValueError(f"{args.judgements}: no judgements")
    models = [args.model] if args.model else sorted({j.model for j in judgements if not j.gamed_baseline})
    options = dict(n_splits=args.folds, baseline_weight=args.baseline_weight, n_boot=args.n_boot, seed=args.seed)
    results = {m: length_controlled_win_rate(judgements, model=m, **options) for m in models}
    print(f"rewardsmith eval lcwr: {len(judgements)} judgements, {len(models)} model(s)")

    def lc_cell(r: dict[str, Any]) -> str:
        if r["lc_win_rate"] is None:
            return "not identified"
        interval = r.get("lc_interval_95")
        return f"{r['lc_win_rate']:.2f}" + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")

    header = ["model", "n", "win rate", "SE", "LC win rate [95% bootstrap]", "θ", "φ (length)", "ψ"]
    header.append("mean chars model/base")
    rows = [
        [
            m,
            r["n"],
            r["win_rate"],
            r["standard_error"],
            lc_cell(r),
            r["theta"],
            r["phi"],
            r["psi"],
            f"{r['mean_length_model_chars']:.0f}/{r['mean_length_base_chars']:.0f}",
        ]
        for m, r in results.items()
    ]
    print(table(header, rows, ".2f"))
    for m, r in results.items():
        print(f"  {m}: difficulty {r['difficulty']}" + (f"; {r['note']}" if r.get("note") else ""))
        for problem in r["problems"]:
            glm = r["glm_lc_win_rate"]
            as_printed = "" if glm is None else f" (the penalised fit, as AlpacaEval prints it: {glm:.2f})"
            print(f"  {m}: NOT IDENTIFIED: {problem}{as_printed}")
    out = output_dir(args.out, "lcwr", Path(args.judgements).stem)
    print()
    _wrote([write_json({"source": str(args.judgements), "models": results}, out / "lcwr.json")])
    return 0


def _cmd_wildbench(args: argparse.Namespace) -> int:
    from .files import output_dir, read_jsonl, table, write_json
    from .wildbench import by_model, wb_reward_mixture, wb_score

    rows = read_jsonl(args.file)
    pairwise = [r for r in rows if "outcome" in r]
    scored = [r for r in rows if "score" in r]
    if not pairwise and not scored:
        raise ValueError(f"{args.file}: no row has 'outcome' (WB-Reward) or 'score' (WB-Score)")
    result: dict[str, Any] = {"source": str(args.file)}
    print(f"rewardsmith eval wildbench: {len(pairwise)} pairwise rows, {len(scored)} scored rows")
    if pairwise:
        rewards = {m: wb_reward_mixture(rs, args.margin, args.conventions) for m, rs in by_model(pairwise).items()}
        result["wb_reward"] = rewards
        header = ["model", "baseline", "n", "WB-Reward", "task-macro", "++", "+", "=", "-", "--"]
        header += ["→ tie (margin)", "skipped"]
        rows_out = [
            [
                m,
                b,
                r["n"],
                r["reward"],
                r["task_macro_reward"],
                r["much_better"],
                r["better"],
                r["tie"],
                r["worse"],
                r["much_worse"],
                r["converted_to_tie"],
                r["skipped_truncated_or_empty"],
            ]
            for m, mix in rewards.items()
            for b, r in mix["baselines"].items()
        ]
        print(table(header, rows_out, ".2f"))
        mixture = [[m, mix["task_macro_reward"], mix["mixture_of_rewards"]] for m, mix in rewards.items()]
        print(table(["model", "task-macro WB-Reward (ranking)", "mixture of rewards"], mixture, ".2f"))
        margin = "off (no slight win becomes a tie)" if args.margin is None else f"{args.margin} characters"
        print(f"length margin K: {margin}")
    if scored:
        result["wb_score"] = {m: wb_score(rs, args.conventions) for m, rs in by_model(scored).items()}
        rows_out = []
        for m, r in result["wb_score"].items():
            groups = ", ".join(f"{g} {v['score']:.1f}" for g, v in r["task_groups"].items())
            rows_out.append([m, r["n"], r["score"], r["task_macro_score"], groups])
        print(table(["model", "n", "WB-Score", "task-macro WB-Score (ranking)", "task groups"], rows_out, ".2f"))
    leaderboard = " (task-group weights 0.5/1.25/1/0.75/1.25; truncated/empty outputs left out as its leaderboard does)"
    print(f"conventions: {args.conventions}" + (leaderboard if args.conventions == "leaderboard" else ""))
    out = output_dir(args.out, "wildbench", Path(args.file).stem)
    print()
    _wrote([write_json(result, out / "wildbench.json")])
    return 0


def _cmd_ruler(args: argparse.Namespace) -> int:
    from .files import output_dir, read_jsonl, table, write_json
    from .ruler import ruler_scores

    result = ruler_scores(read_jsonl(args.file))
    print(f"rewardsmith eval ruler: {result['all']['n']} outputs (length = \\w+ words)")
    rows = [[t, v["level"], v["n"], v["mean_words"], v["PM"], v["FM"]] for t, v in result["targets"].items()]
    rows += [[f"level {lv}", lv, v["n"], None, v["PM"], v["FM"]] for lv, v in result["levels"].items()]
    rows.append(["all", "", result["all"]["n"], None, result["all"]["PM"], result["all"]["FM"]])
    print(table(["target", "level", "n", "mean words", "PM %", "FM %"], rows, ".1f"))
    out = output_dir(args.out, "ruler", Path(args.file).stem)
    print()
    _wrote([write_json({"source": str(args.file), **result}, out / "ruler.json")])
    return 0


def _cmd_bon(args: argparse.Namespace) -> int:
    from ..records import read_records, write_records
    from .best_of_n import best_of_n_report, ensure_scored, select_best_of_n
    from .files import fmt, output_dir, write_json

    records = ensure_scored(read_records(args.rollouts).records, args.spec)
    report = best_of_n_report(records)
    report["source"] = str(args.rollouts)
    report["spec"] = args.spec
    u = report["unit"]
    print(
        f"rewardsmith eval bon: {report['prompts']} prompts, {report['rollouts']} rollouts, "
        f"group sizes {report['group_sizes']}"
    )
    print(
        f"  accuracy: selected {fmt(report['selected_accuracy'])}, mean rollout {fmt(report['mean_accuracy'])}, "
        f"oracle (any correct) {fmt(report['oracle_accuracy'])}"
    )
    print(
        f"  mean length ({u}): selected {fmt(report['selected_mean_length'], '.1f')}, "
        f"all {fmt(report['mean_length'], '.1f')}"
    )
    print(f"  mean reward: selected {fmt(report['selected_mean_reward'])}, all {fmt(report['mean_reward'])}")
    for n, th in report["theory"].items():
        print(f"  N={n}: KL(BoN || base) = {th['kl_nats']:.3f} nats, win rate vs one sample = {th['win_rate']:.3f}")
    out = output_dir(args.out, "bon", Path(args.rollouts).stem)
    paths = [write_json(report, out / "bon.json")]
    if args.selected:
        paths.append(write_records(select_best_of_n(records), args.selected))
    print()
    _wrote(paths)
    return 0
