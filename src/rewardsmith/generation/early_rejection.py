"""Early rejection with partial reward models (Cheshmi et al., EMNLP 2025 Findings, "Accelerating LLM Reasoning
via Early Rejection with Partial Reward Modeling"; code scheshmi/accelerated-reasoning-ER-PRM).

Step-level beam search where each live beam is expanded ``beam_width`` times by only ``tau`` tokens (the
partial step), the partial steps are scored by a (process) reward model, the top ``num_beams // beam_width``
survive and only the survivors are completed to the end of the step (``step_tokens`` more tokens at most,
stopping at a step-end or EOS token). Without rejection (``reject=False``: the authors' vanilla beam
search) every candidate is completed before scoring. The token counts of both are reported, so the saving
and the accuracy kept can be measured on the same prompts (:func:`compare_rejection`).

Works with any transformers causal LM (``model.generate``, sampling). Differences from the authors' code,
by design: a finished beam (EOS) is kept as a result instead of being dropped from the beam set, and step
boundaries are token ids (``step_end_ids``) rather than a text marker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Scorer = Callable[[Sequence[int], Sequence[Sequence[int]]], Sequence[float]]
"""(prompt ids, completion ids of each beam) -> one score per beam (higher is better)."""


@dataclass
class Beam:
    ids: list[int]  # completion tokens so far
    score: float = 0.0
    finished: bool = False


@dataclass
class SearchResult:
    beams: list[Beam]  # best first
    tokens_generated: int  # new tokens the policy produced, all phases
    partial_tokens: int = 0  # of which in the τ-token partial steps
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per step: candidates, scores, survivors, completed


def reward_model_scorer(model: Any, pad_token_id: int) -> Scorer:
    """A transformers sequence-classification reward model as a :data:`Scorer` (logit 0 of each prompt+beam)."""
    import torch

    def score(prompt: Sequence[int], beams: Sequence[Sequence[int]]) -> list[float]:
        rows = [list(prompt) + list(b) for b in beams]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):  # right padding: the model reads the last non-pad token
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        return logits[:, 0].float().cpu().tolist()

    return score


def extend(
    model: Any,
    prompt: Sequence[int],
    prefixes: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_token_id: int,
    **generate_kwargs: Any,
) -> list[list[int]]:
    """New tokens for each prompt+prefix from ``model.generate`` (left-padded batch), cut after the first stop id."""
    import torch

    from ..lm_signals import left_padded

    ids, mask = left_padded([list(prompt) + list(p) for p in prefixes], pad_token_id)
    width = ids.shape[1]
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new_tokens,
            eos_token_id=list(stop_ids),
            pad_token_id=pad_token_id,
            **generate_kwargs,
        )
    new: list[list[int]] = []
    for row in out[:, width:].tolist():
        cut = next((j + 1 for j, t in enumerate(row) if t in stop_ids), len(row))
        new.append(row[:cut])
    return new


def partial_beam_search(
    model: Any,
    prompt: Sequence[int],
    scorer: Scorer,
    *,
    eos_token_id: int,
    pad_token_id: int,
    step_end_ids: Sequence[int] = (),
    num_beams: int = 16,
    beam_width: int = 4,
    tau: int = 64,
    step_tokens: int = 256,
    max_steps: int = 20,
    reject: bool = True,
    **generate_kwargs: Any,
) -> SearchResult:
    """Beam search over steps with early rejection of partial steps (``reject=True``) or without it.

    ``generate_kwargs`` go to ``model.generate`` (default ``do_sample=True``). Defaults: the authors'
    run (16 beams, width 4, τ = 64 tokens, 20 steps, completion up to 256 tokens).
    """
    if num_beams < 1 or beam_width < 1 or tau < 1 or step_tokens < 0 or max_steps < 1:
        raise ValueError("num_beams, beam_width, tau and max_steps must be >= 1 and step_tokens >= 0")
    keep = max(1, num_beams // beam_width)
    stops = [eos_token_id, *step_end_ids]
    generate_kwargs.setdefault("do_sample", True)
    live, done = [Beam([])], []
    result = SearchResult([], 0)

    def finish(beams: list[Beam]) -> None:
        rest = [b for b in beams if not (b.ids and b.ids[-1] in stops)]  # the partial step did not end it
        if rest and step_tokens:
            more = extend(model, prompt, [b.ids for b in rest], step_tokens, stops, pad_token_id, **generate_kwargs)
            result.tokens_generated += sum(map(len, more))
            for b, m in zip(rest, more):
                b.ids += m
        for b in beams:
            b.finished = bool(b.ids) and b.ids[-1] == eos_token_id

    for _ in range(max_steps):
        if not live:
            break
        parents = [b for b in live for _ in range(beam_width)]
        partial = extend(model, prompt, [b.ids for b in parents], tau, stops, pad_token_id, **generate_kwargs)
        result.tokens_generated += sum(map(len, partial))
        result.partial_tokens += sum(map(len, partial))
        candidates = [Beam(b.ids + p) for b, p in zip(parents, partial)]
        if not reject:
            finish(candidates)
        scores = list(scorer(prompt, [c.ids for c in candidates]))
        for c, s in zip(candidates, scores):
            c.score = float(s)
        survivors = sorted(candidates, key=lambda c: c.score, reverse=True)[:keep]
        result.rounds.append(
            {
                "candidates": [list(c.ids) for c in candidates],
                "scores": scores,
                "survivors": [list(c.ids) for c in survivors],
            }
        )
        if reject:
            finish(survivors)
        result.rounds[-1]["completed"] = [list(b.ids) for b in survivors]
        done += [b for b in survivors if b.finished]
        live = [b for b in survivors if not b.finished]
    result.beams = sorted(done + live, key=lambda b: b.score, reverse=True)
    return result


@dataclass(frozen=True)
class RejectionTradeoff:
    prompts: int
    tokens_with: int
    tokens_without: int
    accuracy_with: float | None
    accuracy_without: float | None

    @property
    def tokens_saved(self) -> float:
        """Share of the policy's tokens that early rejection saved (1 − with/without)."""
        return 1.0 - self.tokens_with / self.tokens_without if self.tokens_without else 0.0

    @property
    def accuracy_kept(self) -> float | None:
        """Accuracy with rejection over accuracy without (None without a correctness check or at 0 accuracy)."""
        if self.accuracy_with is None or not self.accuracy_without:
            return None
        return self.accuracy_with / self.accuracy_without

    def report_line(self) -> str:
        acc = (
            ""
            if self.accuracy_with is None
            else (
                f"; accuracy {self.accuracy_with:.3f} vs {self.accuracy_without:.3f}"
                + ("" if self.accuracy_kept is None else f" ({100 * self.accuracy_kept:.1f}% kept)")
            )
        )
        return (
            f"early rejection on {self.prompts} prompts: {self.tokens_with} vs {self.tokens_without} policy tokens "
            f"({100 * self.tokens_saved:.1f}% saved){acc}"
        )


def compare_rejection(
    model: Any,
    prompts: Sequence[Sequence[int]],
    scorer: Scorer,
    is_correct: Callable[[int, list[int]], bool] | None = None,
    seed: int = 0,
    **search_kwargs: Any,
) -> RejectionTradeoff:
    """Run :func:`partial_beam_search` with and without rejection on each prompt (same seed per prompt) and
    compare tokens generated and the accuracy of the top beam (``is_correct(prompt_index, completion_ids)``)."""
    import torch

    tokens = {True: 0, False: 0}
    correct = {True: 0, False: 0}
    for i, prompt in enumerate(prompts):
        for reject in (True, False):
            torch.manual_seed(seed + i)
            res = partial_beam_search(model, prompt, scorer, reject=reject, **search_kwargs)
            tokens[reject] += res.tokens_generated
            if is_correct is not None and res.beams:
                correct[reject] += bool(is_correct(i, res.beams[0].ids))
    n = len(prompts)
    if is_correct is None or not n:
        return RejectionTradeoff(n, tokens[True], tokens[False], None, None)
    return RejectionTradeoff(n, tokens[True], tokens[False], correct[True] / n, correct[False] / n)
