"""Token log-probs and entropies from a local causal LM (transformers; the ``lm`` extra).

``CausalLMScorer.score`` takes (context, continuation) text pairs: the two are tokenized apart
(no special tokens) and joined, so the continuation's tokens are the same whatever precedes them;
an empty context is a lone BOS token (the tokenizer's ``bos_token``, else its ``eos_token``, as
GPT-2 does), so the first continuation token is scored too. Pairs are batched ``batch_size`` at a
time with left padding; log-probs are computed in float32 whatever the model's dtype.

For a continuation token y_t at position t: ``log_softmax(logits[t-1])[y_t]`` and the entropy
``-Σ_v p_v log p_v`` of that same next-token distribution.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CausalLMScorer:
    """Scores continuations with ``model`` (a causal LM) and ``tokenizer`` in batches on ``device``."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", batch_size: int = 8):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.start_ids = [] if start is None else [int(start)]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.start_ids or [0])[0]

    @classmethod
    def from_path(cls, path: str, dtype: str = "float32", device: str = "cpu", batch_size: int = 8) -> CausalLMScorer:
        """Load a local model directory (``local_files_only``: nothing is downloaded)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=_DTYPES[dtype])
        except OSError as exc:
            hint = (
                " ('policy' names the policy being trained: it only exists inside `rewardsmith lab`)"
                if path == "policy"
                else ""
            )
            raise ValueError(f"signals.model: cannot load a local causal LM from {path!r}{hint}: {exc}") from None
        return cls(model, tok, device, batch_size)

    def encode(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"] if continuation else []
        return (ctx or self.start_ids), cont

    def count_tokens(self, text: str) -> int:
        return len(self.encode("", text)[1])

    def score(
        self, pairs: Sequence[tuple[str, str]], entropies: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return self.score_ids([self.encode(c, y) for c, y in pairs], entropies)

    def score_ids(
        self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], entropies: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return token_signals(self.model, pairs, self.pad_id, self.batch_size, entropies)


@torch.no_grad()
def token_signals(
    model: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int = 0,
    batch_size: int = 8,
    entropies: bool = False,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per-token log-probs (and entropies) of each continuation id list given its context ids, ``batch_size``
    pairs per forward pass on the model's device (the model's train/eval mode is left as it is)."""
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    device = next(model.parameters()).device
    for start in range(0, len(pairs), batch_size):
        out.extend(_batch(model, pairs[start : start + batch_size], pad_id, device, entropies))
    return out


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of ``rows`` padded on the left with ``pad_id`` to the longest (at least
    one column), so every row ends at the right edge — where generation continues and the last logits sit."""
    width = max(1, max((len(r) for r in rows), default=0))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if len(r):
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids, mask


def _batch(
    model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, device: Any, entropies: bool
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Left-padded (explicit position ids) so every continuation ends at the right edge and only the last
    ``max continuation + 1`` positions' logits are computed (``logits_to_keep``, where the model takes it)."""
    ids, mask = left_padded([list(c) + list(y) for c, y in pairs], pad_id)
    width = ids.shape[1]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = min(width, max(len(y) for _, y in pairs) + 1)
    kwargs = {"logits_to_keep": keep} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    logits = model(
        input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device), **kwargs
    ).logits
    logits = logits[:, -keep:]
    out = []
    for i, (c, y) in enumerate(pairs):
        # the logits before each continuation token; without a context the first token is unscored
        n = len(y) if len(c) else max(len(y) - 1, 0)
        logp = torch.log_softmax(logits[i, keep - 1 - n : keep - 1].float(), dim=-1)  # one row at a time in memory
        targets = ids[i, width - n :].to(device)
        lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu().numpy().astype(np.float64)
        ent = (-(logp.exp() * logp).sum(-1)).cpu().numpy().astype(np.float64) if entropies else None
        out.append((lp, ent))
    return out
