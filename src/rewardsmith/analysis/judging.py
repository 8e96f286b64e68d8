"""Batch jobs on the judge model: pairwise judgement files and AutoRule rule extraction.

``judge_pairwise`` compares two generation files prompt by prompt with the ``judge`` verifier's
``pairwise`` template and writes the judgement file that ``eval lcwr`` and ``eval wildbench``
read (``preference`` for the GLM, ``outcome`` for WB-Reward). Unknown judgements are left out of
the file and counted.

``extract_rules`` follows AutoRule (Wang et al., 2025; three stages): (1) a reasoning model
explains each preference (the dataset's ``rationale`` when given, else the judge writes one);
(2) candidate rules are extracted from each explanation; (3) the candidates are merged into one
deduplicated rule set — first exactly (casefolded, punctuation and spacing ignored), then by
the judge, which may merge paraphrases but must not invent rules [unverified: prompts are this
project's, the paper's merge step is an LLM call as here].
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from ..models.templates import PAIRWISE_OUTCOMES, SYSTEM, block, find_json_object
from ..records import completion_text, prompt_text
from ..verifiers.base import OK, Job, Verdict
from ..verifiers.judge import JudgeVerifier, unknown_reason

log = logging.getLogger("rewardsmith.judge")
_OUTCOME_BY_SCORE = {v: k for k, v in PAIRWISE_OUTCOMES.items()}


def judge_pairwise(
    judge: JudgeVerifier,
    model_rows: Sequence[dict[str, Any]],
    base_rows: Sequence[dict[str, Any]],
    model_name: str = "model",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Judgement rows (model output = A, base = B) for every prompt in both files, and a report."""
    if judge.options.template != "pairwise":  # type: ignore[attr-defined]
        raise ValueError("judge_pairwise needs a judge with template: pairwise")
    base = {_row_id(r): r for r in base_rows}
    pairs = [(r, base[_row_id(r)]) for r in model_rows if _row_id(r) in base]
    jobs = [
        Job(_output(m), _output(b), {"prompt": _prompt_text_of(m), "reference_response": _output(b)}) for m, b in pairs
    ]
    verdicts = judge.check_batch(jobs)
    rows, unknown = [], []
    for (m, b), verdict in zip(pairs, verdicts):
        if verdict.status != OK:
            unknown.append({"instruction_id": _row_id(m), "why": verdict.detail})
        else:
            rows.append(judgement_row(m, b, verdict, model_name))
    report = {
        "pairs": len(pairs),
        "judged": len(rows),
        "unknown": len(unknown),
        "missing_in_base": len(model_rows) - len(pairs),
        "unknown_rows": unknown[:20],
        "usage": judge.usage(),
    }
    return rows, report


def judgement_row(
    model_row: dict[str, Any], base_row: dict[str, Any], verdict: Verdict, model_name: str
) -> dict[str, Any]:
    """One line of the judgement file: ``preference`` (P(model preferred), for ``eval lcwr``) and,
    for a single-order judgement, WildBench's ``outcome`` (for ``eval wildbench``)."""
    row = {
        "instruction_id": _row_id(model_row),
        "model": model_name,
        "output_model": _output(model_row),
        "output_base": _output(base_row),
        "preference": verdict.score,
        "judge_detail": verdict.detail,
    }
    if verdict.score in _OUTCOME_BY_SCORE:
        row["outcome"] = _OUTCOME_BY_SCORE[verdict.score]
    return row


def _row_id(row: dict[str, Any]) -> str:
    for key in ("instruction_id", "prompt_id"):
        if row.get(key) is not None:
            return str(row[key])
    return _prompt_text_of(row)


def _prompt_text_of(row: dict[str, Any]) -> str:
    return prompt_text(row.get("prompt", row.get("instruction", "")))


def _output(row: dict[str, Any]) -> str:
    for key in ("completion", "output"):
        if row.get(key) is not None:
            return completion_text(row[key])
    raise ValueError(f"row {_row_id(row)!r} has no completion/output")


# ---------------------------------------------------------------------------- AutoRule
def _explain_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    text = (
        f"A person preferred response A over response B.\n\n{block('query', _prompt_text_of(row))}\n\n"
        f"{block('response_a', str(row['chosen']))}\n\n{block('response_b', str(row['rejected']))}\n\n"
        'Explain step by step why A is better. Reply: {"reasoning": "..."}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def _extract_prompt(reasoning: str) -> list[dict[str, str]]:
    text = (
        "From the reasoning below about why one response was preferred, extract general rules that a good response "
        "follows. Each rule is one short, self-contained sentence that can be checked on a single response, not "
        f"specific to this query.\n\n{block('reasoning', reasoning)}\n\n"
        'Reply: {"rules": ["...", "..."]}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def _merge_prompt(rules: Sequence[str], max_rules: int) -> list[dict[str, str]]:
    numbered = "\n".join(f"{i + 1}. {r}" for i, r in enumerate(rules))
    text = (
        f"Merge these candidate rules into a deduplicated set: combine rules that say the same thing, drop none "
        f"that says something different, invent nothing; at most {max_rules} rules.\n\n{numbered}\n\n"
        'Reply: {"rules": ["...", "..."]}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def normalise_rule(rule: str) -> str:
    """The form two rules are compared in for exact deduplication."""
    return " ".join(re.sub(r"[^\w\s]", " ", rule.casefold()).split())


def dedupe_rules(rules: Sequence[str]) -> list[str]:
    """Rules in first-seen order, one per normalised form, empty ones dropped."""
    seen: set[str] = set()
    out = []
    for rule in rules:
        key = normalise_rule(rule)
        if key and key not in seen:
            seen.add(key)
            out.append(rule.strip())
    return out


def _rules_from(text: str | None) -> list[str] | None:
    obj = find_json_object(text or "")
    rules = obj.get("rules") if obj else None
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        return None
    return [r for r in rules if r.strip()]


def extract_rules(
    judge: JudgeVerifier, prefs: Sequence[dict[str, Any]], max_rules: int = 64
) -> tuple[list[str], dict[str, Any]]:
    """AutoRule's three stages over preference rows ``{prompt, chosen, rejected[, rationale]}``."""
    client = judge.client
    for i, row in enumerate(prefs):
        if row.get("chosen") is None or row.get("rejected") is None:
            raise ValueError(f"preference row {i}: needs 'chosen' and 'rejected'")

    async def one(row: dict[str, Any]) -> tuple[list[str] | None, str]:
        reasoning = row.get("rationale") or row.get("reasoning")
        if not reasoning:
            reply = await client.chat(_explain_prompt(row))
            why = unknown_reason(reply)
            if why:
                return None, why
            obj = find_json_object(reply.text or "")
            reasoning = str(obj.get("reasoning")) if obj and obj.get("reasoning") else (reply.text or "").strip()
            if not reasoning:
                return None, "empty reasoning"
        reply = await client.chat(_extract_prompt(str(reasoning)))
        why = unknown_reason(reply)
        if why:
            return None, why
        rules = _rules_from(reply.text)
        return (rules, "") if rules is not None else (None, f"unparseable rules: {(reply.text or '')[:120]!r}")

    results = client.run([lambda r=r: one(r) for r in prefs])
    candidates = [rule for rules, _ in results if rules for rule in rules]
    failed = [why for rules, why in results if rules is None]
    exact = dedupe_rules(candidates)
    merged: list[str] | None = None
    if len(exact) > 1:
        (reply,) = client.run([lambda: client.chat(_merge_prompt(exact, max_rules))])
        merged = None if unknown_reason(reply) else _rules_from(reply.text)
        if merged is None:
            log.warning(
                "autorule: the merge request gave no rule list; keeping the %d exactly deduplicated rules", len(exact)
            )
    final = dedupe_rules(merged)[:max_rules] if merged else exact[:max_rules]
    report = {
        "preferences": len(prefs),
        "failed": len(failed),
        "failures": failed[:20],
        "candidates": len(candidates),
        "after_exact_dedupe": len(exact),
        "merged_by_judge": merged is not None,
        "rules": len(final),
        "usage": judge.usage(),
    }
    return final, report
