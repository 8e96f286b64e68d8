"""``rewardsmith lab``: compare reward specs on the overthinking lab (no torch import at module level).

rewardsmith lab --preset quick                      # the built-in comparison on one seed (make demo)
rewardsmith lab --preset study --out runs/study     # several seeds with 95% intervals (rerun to resume)
rewardsmith lab --only kimi --only laser            # a subset (the correctness baseline always runs)
rewardsmith lab --spec my_reward.yaml --out runs/x  # add your own spec
rewardsmith lab --preset full --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli_args import non_negative_float, non_negative_int, positive_float, positive_int

if TYPE_CHECKING:
    from .presets import Preset

PRESET_NAMES = ("tiny", "quick", "study", "full")
# Wall time on 2 CPU cores with a cold cache, as measured in docs/lab.md (which states the same).
PRESET_TIMES = {
    "tiny": "41 s measured on an idle 2-core machine",
    "quick": "453 s measured (make demo) on an idle machine with a cold cache",
    "study": "36 min measured end to end on an idle 2-core machine with a cold cache",
    "full": "not timed here",
}


def _preset_help() -> str:
    T = PRESET_TIMES
    return (
        f"tiny: a smoke test, {T['tiny']}; its policy does not learn the task, so its numbers say "
        f"nothing about the specs; quick: the built-in comparison on one seed (make demo), {T['quick']}; "
        f"study: the comparison on several seeds with 95%% intervals ({T['study']}); "
        f"full: a larger policy and longer RL, for a GPU ({T['full']})"
    )


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from .specs import BUILTIN_NAMES
    from .tasks import RISKY_CHECKS, TASKS

    p = subparsers.add_parser(
        "lab",
        help="train a small policy under several reward specs and report the accuracy/length trade-off",
        description="The overthinking lab: SFT a small verbose policy, "
        "run GRPO (TRL) under each reward spec from the same start, "
        "and report held-out accuracy vs tokens. Writes report.md, results.json and plots.",
    )
    p.add_argument("--preset", choices=PRESET_NAMES, default="quick", help=f"(default: %(default)s) {_preset_help()}")
    p.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="FILE",
        help="a reward spec file to compare as well (repeatable); named by its 'name' or file stem",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        choices=BUILTIN_NAMES,
        metavar="NAME",
        help="run only these built-in specs (repeatable; the correctness baseline always runs; default: the "
        "preset's list): "
        f"{', '.join(BUILTIN_NAMES)}",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: runs/lab/<timestamp>)")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="default: the preset's (cpu for tiny/quick, cuda for full)",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="the first seed (of the base policy, prompts, held-out problems and sampling; default: the preset's)",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        metavar="N",
        help="run N seeds, from --seed on (default: the preset's: 1, or 3 for study); each seed trains its own "
        "base policy (cached per seed) and every spec",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="the task family: rounding (slips on adding 8 or 9 that checks repair; quick, study, full), carry "
        "(slips when a + d >= 13; tiny) or chain (every check redundant); default: the preset's",
    )
    conditions = p.add_argument_group(
        "conditions",
        "change one setting of the preset (docs/lab.md: 'Conditions on the rounding task' and, on the carry task, "
        "'Cutting 30% within 2 points')",
    )
    conditions.add_argument("--rl-steps", type=positive_int, default=None, metavar="N", help="GRPO steps per spec")
    conditions.add_argument("--rl-lr", type=positive_float, default=None, metavar="LR", help="GRPO learning rate")
    conditions.add_argument(
        "--rl-beta",
        type=non_negative_float,
        default=None,
        metavar="B",
        help="GRPO's KL coefficient to the base policy (TRL's beta; the presets: 0, no reference model)",
    )
    conditions.add_argument(
        "--scale-rewards",
        choices=("group", "batch", "none"),
        default=None,
        help="GRPO's advantage scaling (TRL's scale_rewards; the presets: group)",
    )
    conditions.add_argument("--sft-steps", type=positive_int, default=None, metavar="N", help="SFT steps")
    conditions.add_argument(
        "--risky-checks",
        choices=tuple(RISKY_CHECKS),
        default=None,
        help="slip tasks' SFT traces: habit (tiny) = the per-trace verbosity scales the checks of slipped "
        "steps like the rest; skill = slipped steps are checked at 0.9 whatever the verbosity; "
        "always (quick, study, full) = every slipped step is checked",
    )
    conditions.add_argument(
        "--verbosity-spread",
        type=float,
        default=None,
        metavar="S",
        help="slip tasks' SFT traces: each trace's verbosity v ~ U(1 - S, 1 + S) scales its checks and "
        "restatements (0 to 1; quick: 1.0, so concise traces are common enough for the policy to compute in them)",
    )
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument(
        "--multiturn",
        action="store_true",
        help="the multi-turn lab instead: a calculator tool-use task, outcome-only vs per-call credit "
        "(presets tiny and quick; docs/lab.md)",
    )
    p.set_defaults(func=_cmd_lab)


def with_conditions(preset: Preset, args: argparse.Namespace) -> Preset:
    """``preset`` with the task and the condition flags given on the command line."""
    from .tasks import RISKY_CHECKS, SLIP_TASKS, CarryStyle

    if args.task and args.task != preset.sft.task:
        # between the slip tasks the preset's style carries over; otherwise the task's default style
        keep = args.task in SLIP_TASKS and preset.sft.task in SLIP_TASKS
        preset = replace(preset, sft=replace(preset.sft, task=args.task, style=preset.sft.style if keep else None))
    rl = {
        k: v
        for k, v in (
            ("steps", args.rl_steps),
            ("learning_rate", args.rl_lr),
            ("beta", args.rl_beta),
            ("scale_rewards", args.scale_rewards),
        )
        if v is not None
    }
    if rl:
        preset = replace(preset, rl=replace(preset.rl, **rl))
    if args.sft_steps is not None:
        preset = replace(preset, sft=replace(preset.sft, steps=args.sft_steps))
    style: dict[str, float | bool] = {}  # the slip tasks' trace-style flags
    if args.risky_checks is not None:
        style.update(RISKY_CHECKS[args.risky_checks])
    if args.verbosity_spread is not None:
        style["verbosity_spread"] = args.verbosity_spread
    if style:
        if not isinstance(preset.sft.style, CarryStyle):
            raise ValueError("--risky-checks and --verbosity-spread apply to the slip tasks (carry, rounding) only")
        preset = replace(preset, sft=replace(preset.sft, style=replace(preset.sft.style, **style)))
    return preset


def _cmd_lab(args: argparse.Namespace) -> int:
    if args.multiturn:
        from .multiturn import cli_main

        return cli_main(args)
    from ..spec import read_spec_file
    from .presets import PRESETS
    from .specs import select_specs

    try:
        preset = with_conditions(PRESETS[args.preset], args)
    except ValueError as e:
        print(f"rewardsmith lab: error: {e}", file=sys.stderr)
        return 2
    device = args.device or preset.device
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(
                "rewardsmith lab: error: --device cuda but no CUDA device is available (use --device cpu)",
                file=sys.stderr,
            )
            return 2
    user = [(Path(f).stem, read_spec_file(f), f) for f in args.spec]
    from .specs import BUILTIN_SPECS

    specs = select_specs(args.only or [n for n in preset.specs if n in BUILTIN_SPECS], user)
    out = Path(args.out) if args.out else Path("runs") / "lab" / time.strftime("%Y%m%d-%H%M%S")
    first = preset.seeds[0] if args.seed is None else args.seed
    seeds = (
        preset.seeds
        if args.seed is None and args.seeds is None
        else tuple(range(first, first + (args.seeds or len(preset.seeds))))
    )

    from .report import terminal_table, write_report
    from .run import run_lab

    print(
        f"rewardsmith lab: preset {preset.name}, {len(specs)} specs ({', '.join(s.name for s in specs)}), "
        f"device {device}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, out {out}",
        file=sys.stderr,
    )
    results = run_lab(preset, specs, device=device, seeds=seeds, out_dir=out, threads=args.threads)
    report = write_report(results, out)
    print(terminal_table(results))
    if preset.smoke:
        print(
            "\nnote: a smoke test: it only checks that the lab runs; its policy does not learn the task, "
            "so these numbers say nothing about the specs. Compare specs with --preset quick or study."
        )
    if results["failures"]:
        print(f"\n{len(results['failures'])} run(s) failed (see the report); rerun with --out {out} to retry them")
    print(f"\n{results['seconds']:.0f} s; report: {report}; results: {out / 'results.json'}")
    return 1 if results["failures"] else 0
