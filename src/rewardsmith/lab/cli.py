"""``rewardsmith lab``: compare reward specs on the overthinking lab (no torch import at module level).

rewardsmith lab --preset quick                      # the built-in comparison, ~5 min on 2 CPU cores
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

from ..cli_args import non_negative_int, positive_int

PRESET_NAMES = ("tiny", "quick", "full")
# Wall time on 2 CPU cores with a cold cache, as measured in docs/lab.md (which states the same).
PRESET_TIMES = {"tiny": "about 30 s", "quick": "about 5 min", "full": "not timed here"}
PRESET_HELP = (
    f"tiny: a smoke run, {PRESET_TIMES['tiny']}; its policy does not learn the task, so its numbers say nothing about "
    f"the specs; quick: the built-in comparison (make demo), {PRESET_TIMES['quick']}; "
    f"full: a larger policy and 150 RL steps, for a GPU ({PRESET_TIMES['full']})"
)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from .specs import BUILTIN_NAMES
    from .tasks import TASKS

    p = subparsers.add_parser(
        "lab",
        help="train a small policy under several reward specs and report the accuracy/length trade-off",
        description="The overthinking lab: SFT a small verbose policy, "
        "run GRPO (TRL) under each reward spec from the same start, "
        "and report held-out accuracy vs tokens. Writes report.md, results.json and plots.",
    )
    p.add_argument("--preset", choices=PRESET_NAMES, default="quick", help=f"(default: %(default)s) {PRESET_HELP}")
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
        default=0,
        help="seed of the base policy, prompts and sampling (default: %(default)s)",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="the task family: carry (systematic slips that checks repair) or chain (every check redundant); "
        "default: the preset's (carry)",
    )
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    p.set_defaults(func=_cmd_lab)


def _cmd_lab(args: argparse.Namespace) -> int:
    from ..spec import read_spec_file
    from .presets import PRESETS
    from .specs import select_specs

    preset = PRESETS[args.preset]
    if args.task and args.task != preset.sft.task:
        preset = replace(preset, sft=replace(preset.sft, task=args.task, style=None))
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

    from .report import terminal_table, write_report
    from .run import run_lab

    print(
        f"rewardsmith lab: preset {preset.name}, {len(specs)} specs ({', '.join(s.name for s in specs)}), "
        f"device {device}, seed {args.seed}",
        file=sys.stderr,
    )
    results = run_lab(preset, specs, device=device, seed=args.seed, threads=args.threads)
    report = write_report(results, out)
    print(terminal_table(results))
    if preset.name == "tiny":
        print(
            "\nnote: the tiny preset only checks that the lab runs: its policy does not learn the task, "
            "so these numbers say nothing about the specs. Compare specs with --preset quick."
        )
    print(f"\n{results['seconds']:.0f} s; report: {report}; results: {out / 'results.json'}")
    return 0
