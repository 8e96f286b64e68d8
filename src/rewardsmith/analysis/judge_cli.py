"""``rewardsmith judge pairwise`` and ``rewardsmith autorule extract``: batch jobs on a judge model.

    rewardsmith judge pairwise model.jsonl base.jsonl --spec judge.yaml -o judgements.jsonl
    rewardsmith eval lcwr judgements.jsonl
    rewardsmith autorule extract prefs.jsonl --spec judge.yaml -o rules.yaml

``--spec`` is a reward spec whose ``verifier`` is a ``judge`` (its template is set by the command).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..cli_args import positive_int


def _judge_from_spec(path: str, template: str) -> Any:
    from ..components import build
    from ..registry import SpecError
    from ..spec import read_spec_file

    cfg = read_spec_file(path).get("verifier")
    if not isinstance(cfg, dict) or cfg.get("name") != "judge":
        raise SpecError(f"{path}: verifier must be a judge ({{name: judge, base_url: ..., model: ...}})")
    return build("verifier", {**cfg, "template": template}, "verifier")


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    from ..records import RecordError

    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise RecordError(f"{path}:{n}: not JSON: {exc}") from None
    return rows


def _cmd_pairwise(args: argparse.Namespace) -> int:
    from .judging import judge_pairwise

    judge = _judge_from_spec(args.spec, "pairwise")
    rows, report = judge_pairwise(judge, _read_jsonl(args.model_file), _read_jsonl(args.base_file), args.model_name)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    u = report["usage"]
    print(
        f"rewardsmith judge pairwise: {report['judged']} judged, {report['unknown']} unknown (left out) of "
        f"{report['pairs']} pairs; {report['missing_in_base']} model rows without a base row -> {out}"
    )
    print(
        f"  requests {u['requests']}, cache hits {u['cache_hits']}, over budget {u['over_budget']}, "
        f"tokens {u['prompt_tokens']}+{u['completion_tokens']}, cost ${u['cost_usd']:.4f}"
    )
    for row in report["unknown_rows"][:5]:
        print(f"  unknown {row['instruction_id']}: {row['why'][:160]}", file=sys.stderr)
    return 0 if report["judged"] else 1


def _cmd_extract(args: argparse.Namespace) -> int:
    import yaml

    from .judging import extract_rules

    judge = _judge_from_spec(args.spec, "pointwise")
    rules, report = extract_rules(judge, _read_jsonl(args.prefs), args.max_rules)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        yaml.safe_dump(
            {"rules": rules, "source": str(args.prefs), "model": judge.options.model},
            sort_keys=False,
            allow_unicode=True,
        )
    )
    print(
        f"rewardsmith autorule extract: {report['rules']} rules from {report['candidates']} candidates "
        f"({report['after_exact_dedupe']} after exact dedupe, merged by the judge: {report['merged_by_judge']}); "
        f"{report['failed']} of {report['preferences']} preferences gave no rules -> {out}"
    )
    return 0 if rules else 1


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    j = subparsers.add_parser("judge", help="batch jobs on an LLM judge").add_subparsers(
        dest="judge_command", required=True
    )
    p = j.add_parser(
        "pairwise", help="judge two generation files prompt by prompt; writes the file eval lcwr/wildbench read"
    )
    p.add_argument("model_file", help="JSONL: prompt_id (or instruction_id), prompt, completion (or output)")
    p.add_argument("base_file", help="the baseline's generations, same fields")
    p.add_argument("--spec", required=True, help="spec whose verifier is a judge")
    p.add_argument("--model-name", default="model", help="the 'model' field of every row (default: model)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_pairwise)
    a = subparsers.add_parser("autorule", help="AutoRule: rules from preference data").add_subparsers(
        dest="autorule_command", required=True
    )
    p = a.add_parser("extract", help="extract and deduplicate rules from a preference dataset with the judge model")
    p.add_argument("prefs", help="JSONL: prompt, chosen, rejected, optional rationale")
    p.add_argument("--spec", required=True, help="spec whose verifier is a judge")
    p.add_argument("--max-rules", type=positive_int, default=64, help="most rules kept (default: 64)")
    p.add_argument("-o", "--output", required=True, help="rules YAML (the autorule template's rules_file)")
    p.set_defaults(func=_cmd_extract)
