"""Held-out evaluation of a lab policy and the trade-off metrics between runs.

A policy is evaluated by greedy decoding on held-out problems (batched, left padding, KV
cache), and optionally by one sampled completion per problem; each completion is checked by the same ``exact`` verifier the rewards use (answer after
``####``). Reported: accuracy and mean completion tokens (EOS included, as in TRL's
``completion_ids``), per difficulty and overall; the share of redundant steps left; and, against
the correctness-only run, token reduction, accuracy change and AES.

    >>> aes(acc=0.9, tokens=50, base_acc=0.9, base_tokens=100)
    0.5
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..verifiers.exact import ExactVerifier
from .tasks import Problem, annotate

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

TASK_VERIFIER: dict[str, Any] = {"name": "exact", "extract": ["hash"]}


def answer_is_correct(verifier: ExactVerifier, completion: str, answer: str) -> bool:
    job = verifier.job(completion, answer, {})
    return job is not None and verifier.check(job).score == 1.0


@dataclass(frozen=True)
class Generation:
    text: str
    num_tokens: int  # generated tokens, EOS included when the model stopped
    finished: bool  # emitted EOS within the budget


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 256,
    temperature: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Completions of ``prompts``, greedy (``temperature`` 0) or sampled (batched, left-padded,
    with KV cache). Seed torch beforehand for reproducible samples."""
    import torch

    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        if temperature > 0
        else {"do_sample": False}
    )

    out: list[Generation] = []
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = next(model.parameters()).device
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            seqs = model.generate(**enc, **sampling, max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos)
        for row in seqs[:, enc["input_ids"].shape[1] :].tolist():
            finished = eos in row
            ids = row[: row.index(eos) + 1] if finished else row
            text = tokenizer.decode([i for i in ids if i not in (eos, pad)])
            out.append(Generation(text, len(ids), finished))
        if progress is not None:
            progress(len(chunk))
    return out


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


_COLUMNS = (
    "correct",
    "tokens",
    "redundant",
    "steps",
    "finished",
    "repair_tokens",
    "redundant_tokens",
    "unrepaired",
    "slipped",
    "repairs",
    "right",
    "rechecks",
)


def _rate(hits: float, total: float) -> float | None:
    return hits / total if total else None


def score_generations(problems: Sequence[Problem], generations: Sequence[Generation]) -> dict[str, Any]:
    """Accuracy, mean tokens and redundancy, overall and per difficulty, and every completion's
    (difficulty, tokens, correct) in ``completions`` (columns: the study bins accuracy by length).

    ``redundant_share`` = redundant steps (re-checks that change nothing, restatements) / all
    steps written (0 when no steps were written); ``no_steps_share`` = completions with no step
    at all (bare guesses); ``repair_tokens`` and ``redundant_tokens`` = mean tokens of repairing
    checks and of redundant steps per completion; ``unrepaired_share`` = completions with a slipped
    step left unrepaired (see :func:`~rewardsmith.lab.tasks.annotate`). Check selectivity:
    ``slip_check_rate`` = slipped steps followed by their repairing check / slipped steps,
    ``right_check_rate`` = steps written right followed by a re-check / steps written right (None
    where there were no such steps) — a policy that checks where it errs has the first near 1 and
    the second near 0. ``slip_checks_by_step``: per step position (1-based, pooled over difficulties),
    ``{"n": slipped steps there, "share": the share of them repaired}`` — where a reward removes the checks
    that repair."""
    if len(problems) != len(generations):
        raise ValueError(f"{len(problems)} problems for {len(generations)} generations")
    verifier = ExactVerifier(**{k: v for k, v in TASK_VERIFIER.items() if k != "name"})
    rows: dict[int, dict[str, list[float]]] = {}
    slipped_at: Counter[int] = Counter()
    repaired_at: Counter[int] = Counter()
    correct = [answer_is_correct(verifier, g.text, p.answer) for p, g in zip(problems, generations)]
    for p, g, ok in zip(problems, generations, correct):
        parts = annotate(g.text, p.task)
        slipped_at.update(parts.slipped_at)
        repaired_at.update(parts.repaired_at)
        r = rows.setdefault(p.difficulty, {k: [] for k in _COLUMNS})
        r["correct"].append(1.0 if ok else 0.0)
        r["tokens"].append(float(g.num_tokens))
        r["redundant"].append(float(parts.redundant_steps))
        r["steps"].append(float(parts.steps))
        r["finished"].append(1.0 if g.finished else 0.0)
        r["repair_tokens"].append(float(parts.repair_tokens))
        r["redundant_tokens"].append(float(parts.redundant_tokens))
        r["unrepaired"].append(1.0 if parts.unrepaired_slips else 0.0)
        r["slipped"].append(float(parts.slipped_steps))
        r["repairs"].append(float(parts.repair_steps))
        r["right"].append(float(parts.necessary_steps - parts.slipped_steps))
        r["rechecks"].append(float(parts.recheck_steps))

    def summarise(r: dict[str, list[float]]) -> dict[str, Any]:
        total_steps = sum(r["steps"])
        return {
            "n": len(r["correct"]),
            "accuracy": _mean(r["correct"]),
            "mean_tokens": _mean(r["tokens"]),
            "redundant_share": sum(r["redundant"]) / total_steps if total_steps else 0.0,
            "no_steps_share": _mean([1.0 if n == 0 else 0.0 for n in r["steps"]]),
            "truncated_share": 1.0 - _mean(r["finished"]),
            "repair_tokens": _mean(r["repair_tokens"]),
            "redundant_tokens": _mean(r["redundant_tokens"]),
            "unrepaired_share": _mean(r["unrepaired"]),
            "slip_check_rate": _rate(sum(r["repairs"]), sum(r["slipped"])),
            "right_check_rate": _rate(sum(r["rechecks"]), sum(r["right"])),
        }

    merged = {k: [v for r in rows.values() for v in r[k]] for k in _COLUMNS}
    return {
        **summarise(merged),
        "by_difficulty": {str(k): summarise(rows[k]) for k in sorted(rows)},
        "slip_checks_by_step": {str(k): {"n": n, "share": repaired_at[k] / n} for k, n in sorted(slipped_at.items())},
        "completions": {
            "difficulty": [str(p.difficulty) for p in problems],
            "tokens": [g.num_tokens for g in generations],
            "correct": [int(ok) for ok in correct],
        },
    }


def evaluate_policy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    max_new_tokens: int,
    batch_size: int = 256,
    sample_temperature: float = 0.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy metrics (see :func:`score_generations`) with a few sample completions; with
    ``sample_temperature`` > 0 also ``sampled``: the same metrics for one sampled completion per
    problem (seeded) — greedy decoding hides how much probability the policy still gives to
    redundant steps."""
    import torch

    prompts = [p.prompt for p in problems]
    gens = generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    result = score_generations(problems, gens)
    result["samples"] = [
        {"prompt": p.prompt, "answer": p.answer, "completion": g.text, "num_tokens": g.num_tokens}
        for p, g in list(zip(problems, gens))[:12]
    ]
    if sample_temperature > 0:
        torch.manual_seed(seed)
        result["sampled"] = {
            "temperature": sample_temperature,
            **score_generations(
                problems, generate(model, tokenizer, prompts, max_new_tokens, batch_size, sample_temperature)
            ),
        }
    return result


def aes(
    acc: float,
    tokens: float,
    base_acc: float,
    base_tokens: float,
    alpha: float = 1.0,
    beta: float = 3.0,
    gamma: float = 5.0,
) -> float:
    """Accuracy-Efficiency Score (Ada-R1, 2025), weights [unverified].

    ΔL = (L_base − L)/L_base, ΔAcc = (Acc − Acc_base)/Acc_base;
    AES = α·ΔL + β·ΔAcc if ΔAcc ≥ 0 else α·ΔL − γ·|ΔAcc|.
    With ``base_acc`` = 0 the relative change is undefined and the absolute change is used;
    ``base_tokens`` = 0 gives ΔL = 0."""
    d_len = (base_tokens - tokens) / base_tokens if base_tokens > 0 else 0.0
    d_acc = (acc - base_acc) / base_acc if base_acc > 0 else acc - base_acc
    return alpha * d_len + beta * d_acc if d_acc >= 0 else alpha * d_len - gamma * abs(d_acc)


def compare_to_baseline(
    result: dict[str, Any], base: dict[str, Any], alpha: float = 1.0, beta: float = 3.0, gamma: float = 5.0
) -> dict[str, float]:
    """Token reduction (fraction), accuracy change (absolute, in [−1, 1]) and AES vs ``base``."""
    base_tokens = base["mean_tokens"]
    return {
        "token_reduction": (base_tokens - result["mean_tokens"]) / base_tokens if base_tokens > 0 else 0.0,
        "accuracy_change": result["accuracy"] - base["accuracy"],
        "aes": aes(result["accuracy"], result["mean_tokens"], base["accuracy"], base_tokens, alpha, beta, gamma),
    }


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the points (accuracy, tokens) not dominated by another: none has higher-or-equal
    accuracy with fewer-or-equal tokens and is strictly better in one. Sorted by tokens."""
    front = []
    for name, (acc, tok) in points.items():
        dominated = any(
            a >= acc and t <= tok and (a > acc or t < tok) for other, (a, t) in points.items() if other != name
        )
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: (points[n][1], -points[n][0]))


def necessary_trace_errors(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    batch_size: int = 256,
) -> dict[str, Any]:
    """Can the policy compute in the concise format a length reward pushes it to? Teacher-forced on
    each problem's necessary trace (its steps and repairing checks, nothing else), the share of
    problems where greedy decoding would write another digit where the trace holds one (the next
    term, an operand, a result). Where it would write a non-digit instead — a check or a
    restatement it prefers — it is choosing, not erring. Returns ``{"share", "n", "by_difficulty":
    {k: {"share", "n"}}}``; docs/lab.md, "The task", has the figures that motivated it."""
    import torch

    from ..lm_signals import left_padded

    digits = {tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)}
    device = next(model.parameters()).device
    rows: dict[int, list[int]] = {}
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        prompts = [tokenizer(p.prompt, add_special_tokens=False)["input_ids"] for p in chunk]
        traces = [tokenizer(p.necessary_trace, add_special_tokens=False)["input_ids"] for p in chunk]
        ids, mask = left_padded([a + b for a, b in zip(prompts, traces)], tokenizer.pad_token_id)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device))
        predicted = logits.logits.argmax(-1).tolist()
        for p, trace, guess in zip(chunk, traces, predicted):
            after = guess[len(guess) - len(trace) - 1 : -1]  # the prediction for each trace token
            wrong = any(t in digits and g in digits and g != t for t, g in zip(trace, after))
            rows.setdefault(p.difficulty, []).append(int(wrong))
    every = [x for r in rows.values() for x in r]
    return {
        "share": _rate(sum(every), len(every)),
        "n": len(every),
        "by_difficulty": {str(k): {"share": _rate(sum(v), len(v)), "n": len(v)} for k, v in sorted(rows.items())},
    }


def necessary_tokens(problems: Sequence[Problem], tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """Tokens (EOS included) of the shortest trace that reaches the answer the policy's way (the
    steps, plus a repairing check after each slip in a slip task), mean and maximum overall
    and per difficulty: a policy well below this is skipping necessary work, and a length budget
    below the maximum makes some problems unsolvable within it."""
    rows: dict[int, list[int]] = {}
    for p in problems:
        rows.setdefault(p.difficulty, []).append(
            len(tokenizer(p.necessary_trace, add_special_tokens=False)["input_ids"]) + 1
        )
    every = [n for v in rows.values() for n in v]
    return {
        "mean_tokens": _mean(every),
        "max_tokens": max(every, default=0),
        "by_difficulty": {str(k): _mean(rows[k]) for k in sorted(rows)},
        "max_by_difficulty": {str(k): max(rows[k]) for k in sorted(rows)},
    }
