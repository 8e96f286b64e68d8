"""Command line: ``rewardsmith score | list | lab | serve | audit | eval | probe`` (also ``python -m rewardsmith``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .cli_args import non_negative_int, positive_float, positive_int


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return str(value)


def print_table(rows: Sequence[tuple[str, Any]], title: str = "", file: Any = None) -> None:
    """A two-column table on the terminal (``name  value``)."""
    file = file or sys.stdout
    width = max((len(k) for k, _ in rows), default=0)
    if title:
        print(title, file=file)
    for key, value in rows:
        print(f"  {key:<{width}}  {_fmt(value)}", file=file)


def _cmd_score(args: argparse.Namespace) -> int:
    """All or nothing: every check that can fail (spec, state file, records, writable output and
    state paths, serialisable columns) runs before verifying anything; the output and the state are
    staged and renamed into place together, so a failed run leaves both exactly as they were."""
    from tqdm import tqdm

    from .atomic import check_writable, commit_files
    from .pipeline import load_spec
    from .records import RecordError, check_serialisable, read_records, stage_records
    from .spec import parse_spec
    from .types import MAX_STEP

    t0 = time.perf_counter()
    if args.step is not None and not 0 <= args.step <= MAX_STEP:
        raise RecordError(f"--step must be in [0, {MAX_STEP}], got {args.step}")
    overrides: dict[str, Any] = {}
    if args.workers:
        overrides["workers"] = args.workers
    if args.timeout_s:
        overrides["timeout_s"] = args.timeout_s
    spec = parse_spec(args.spec)
    engine = None
    if args.engine == "ray":
        from .integrations.ray_engine import RayVerificationEngine

        engine = RayVerificationEngine(
            args.workers, overrides.get("timeout_s", spec.timeout_s), spec.cache_size, args.address
        )
    try:
        pipe = load_spec(spec, engine=engine, **overrides)
    except BaseException:
        if engine is not None:
            engine.close()
        raise
    try:
        pipe.start_workers()  # workers start while the input is read
        report = read_records(args.rollouts, skip_invalid=args.skip_invalid)
        records = report.records
        out = Path(args.output) if args.output else Path(args.rollouts).with_suffix(".scored.jsonl")
        check_writable(out, "output")
        if pipe.spec.state:
            check_writable(pipe.spec.state, "state")
        check_serialisable(records, out)
        bar = tqdm(
            total=len(records),
            unit="rollout",
            desc="scoring",
            disable=not sys.stderr.isatty() and not args.progress,
            file=sys.stderr,
        )
        try:
            scores = pipe.score(records, step=args.step, progress=bar.update, save=False)
        finally:
            bar.close()
        scored = scores.to_records(records)
        staged = [stage_records(scored, out)]
        if pipe.spec.state:
            staged.append(pipe.state.stage(pipe.spec.state))
        commit_files(staged)
    finally:
        pipe.close()
    summary = scores.summary()
    summary["skipped_invalid"] = report.n_skipped
    summary["seconds"] = time.perf_counter() - t0
    for source, verifier in pipe.verifiers.items():  # model-judged verifiers: requests, cache, tokens, cost
        if hasattr(verifier, "usage"):
            prefix = "judge_" if source == "default" else f"judge_{source}_"
            summary.update({prefix + k: v for k, v in verifier.usage().items()})
    keys = (
        "records",
        "groups",
        "zero_variance_groups",
        "mean_reward",
        "accuracy",
        "unknown_correct",
        "mean_length",
        "unit",
        "timeouts",
        "errors",
        "judge_failed",
        "skipped_invalid",
        "seconds",
    )
    rows = [(k, summary[k]) for k in keys if k in summary]
    rows += [(k, v) for k, v in summary.items() if k.startswith("judge_") and k != "judge_failed"]
    print_table(rows, title=f"scored {len(scored)} rollouts -> {out}")
    for line in report.skipped[:10]:
        print(f"  skipped: {line}", file=sys.stderr)
    if report.n_skipped > 10:
        print(f"  ... and {report.n_skipped - 10} more skipped", file=sys.stderr)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2, allow_nan=True))
    return 0


def _option_default(field: Any) -> str:
    """An option's default as ``list -v`` shows it: ``required``, or the value (also from a default factory)."""
    return "required" if field.is_required() else repr(field.get_default(call_default_factory=True))


def _cmd_list(args: argparse.Namespace) -> int:
    from .components import entries
    from .plugins import with_installed

    found, problems = with_installed(entries(args.kind), args.kind)
    current = None
    for e in found:
        if e.kind != current:
            if current is not None:
                print()
            print(f"{e.kind}s:")
            current = e.kind
        opts = ", ".join(f"{k}={_option_default(f)}" for k, f in e.cls.Options.model_fields.items())
        paper = f"  [{e.paper}]" if e.paper else ""
        print(f"  {e.name:<20} {e.description}{paper}")
        if args.verbose and opts:
            print(f"  {'':<20} options: {opts}")
        tags = [tag for tag, on in e.capabilities.items() if on]
        if args.verbose and tags:
            print(f"  {'':<20} capabilities: {', '.join(tags)}")
        if args.verbose and e.cls.example_options:
            print(f"  {'':<20} example: {json.dumps({'name': e.name, **e.cls.example_options})}")
    for item in problems:
        print(
            f"installed component {item.name!r} ({item.value}, package {item.dist}) is not listed: {item.error}",
            file=sys.stderr,
        )
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``command`` ``score`` or ``list`` (the one being run), the other
    sub-commands are left out, so scoring does not import the probe, the lab or the server CLI."""
    parser = argparse.ArgumentParser(prog="rewardsmith", description="Reward design for RL post-training of LLMs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score a rollout file (JSONL/Parquet) with a reward spec")
    p.add_argument("rollouts", help="rollout records: .jsonl or .parquet")
    p.add_argument("--spec", required=True, help="reward spec (.yaml/.toml/.json)")
    p.add_argument("-o", "--output", help="where to write scored records (default: ROLLOUTS.scored.jsonl)")
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where verification runs (default: local processes)"
    )
    p.add_argument("--address", default=None, help="Ray cluster address for --engine ray (default: a local cluster)")
    p.add_argument(
        "--workers", type=positive_int, default=None, help="verification processes (default: the machine's cores)"
    )
    p.add_argument(
        "--timeout-s",
        type=positive_float,
        default=None,
        help="hard timeout per verified item (default: the spec's, 5 s)",
    )
    p.add_argument(
        "--step",
        type=non_negative_int,
        default=None,
        help="training step for schedules (default: from records or state)",
    )
    p.add_argument("--skip-invalid", action="store_true", help="skip and count malformed records instead of stopping")
    p.add_argument("--summary-json", help="also write the summary as JSON here")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    p.set_defaults(func=_cmd_score)

    # Sub-commands living beside the code they drive: each module has ``register_cli(subparsers)``
    # and imports nothing heavy (torch, ray, fastapi) at module level.
    p = sub.add_parser("list", help="list every built-in and installed component with its paper")
    p.add_argument(
        "--kind",
        choices=("verifier", "format", "shaper", "advantage"),
        default=None,
        help="only this kind (default: all)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show each component's options")
    p.set_defaults(func=_cmd_list)
    if command in ("score", "list"):
        return parser

    from .analysis import cli as analysis_cli
    from .analysis import judge_cli
    from .integrations import server_cli
    from .lab import cli as lab_cli
    from .probe import cli as probe_cli

    for module in (lab_cli, server_cli, analysis_cli, probe_cli, judge_cli):
        module.register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .records import RecordError
    from .registry import SpecError
    from .state import StateError

    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words[0] if words else None).parse_args(words)
    command = " ".join(part for part in (args.command, getattr(args, "eval_command", None)) if part)
    try:
        return int(args.func(args) or 0)
    except (SpecError, RecordError, StateError, FileNotFoundError) as exc:
        print(f"rewardsmith {command}: error: {exc}", file=sys.stderr)
        return 2
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:  # a path given on the command line
        print(f"rewardsmith {command}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # The reader went away (``rewardsmith list | head``): stop quietly, as a tool killed by SIGPIPE would.
        os.dup2(
            os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()
        )  # no second error when Python flushes stdout at exit
        return 128 + 13
    except OSError as exc:  # writing the output or state failed (a full disk): nothing was replaced
        print(f"rewardsmith {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rewardsmith {command}: interrupted", file=sys.stderr)
        return 128 + 2


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (and not some other pipe, e.g. to a worker process)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is always reported: set on a pipe without a reader
        return any(mask & select.POLLERR for _, mask in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() on this platform, or stdout has no file descriptor
        return False


if __name__ == "__main__":
    raise SystemExit(main())
