"""``rewardsmith probe SPEC [--data ROLLOUTS] [--json] [--all]``: exit 1 when an exploit ties or beats
an honest answer or a wrong answer can outscore a correct one, 0 when none does, 2 on bad input."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_WIDTH = 100  # reproduction column on the terminal; --json prints it whole
_PER_CLASS = 4  # rows per class on the terminal without --all


def _elide(text: str) -> str:
    """Head and tail of a reproduction (the reasoning in the middle is rarely the point)."""
    return text if len(text) <= _WIDTH else f"{text[:40]}…{text[-(_WIDTH - 41) :]}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return str(value)


def _cmd_probe(args: argparse.Namespace) -> int:
    from ..records import read_records
    from .run import probe

    data = read_records(args.data).records if args.data else None
    report = probe(args.spec, data=data, workers=args.workers)
    shown = report.findings if args.all else report.found
    if args.json:
        print(json.dumps([f.as_dict() for f in shown], indent=2, ensure_ascii=False))
    else:
        per_class: dict[str, int] = {}
        rows = []
        for f in shown:
            per_class[f.cls] = per_class.get(f.cls, 0) + 1
            if args.all or per_class[f.cls] <= _PER_CLASS:
                rows.append((f.exploit, f.cls, _cell(f.reward), _cell(f.honest_reward), _elide(f.reproduction)))
        header = ("exploit", "class", "reward", "honest reward", "reproduction")
        widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(4)]
        for r in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
        tried = {c: sum(f.cls == c for f in report.findings) for c in sorted(report.classes_tried())}
        found = {c: sum(f.cls == c for f in report.found) for c in tried}
        hidden = len(shown) - len(rows)
        print(
            f"\n{len(report.found)} of {len(report.findings)} exploits got through ({report.seconds:.1f} s)"
            + (f"; {hidden} more not listed (--all or --json lists every one)" if hidden else "")
            + ". Per class, through/tried:"
        )
        print("  " + ", ".join(f"{c} {found[c]}/{n}" for c, n in tried.items()))
        for line in report.sweeps:
            print(f"  option sweep: {line}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 1 if report.found else 0


def register_cli(sub: Any) -> None:
    p = sub.add_parser(
        "probe", help="try exploits built from a spec (and your rollouts) against it; exit 1 if any gets through"
    )
    p.add_argument("spec", help="reward spec (.yaml/.toml/.json)")
    p.add_argument("--data", help="your rollout records (.jsonl/.parquet): correct ones are mutated into exploits")
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {exploit, class, reward, honest_reward, reproduction, found, setting}",
    )
    p.add_argument("--all", action="store_true", help="list every exploit tried, not only those that got through")
    p.add_argument("--workers", type=int, default=2, help="verification processes (default 2)")
    p.set_defaults(func=_cmd_probe)
