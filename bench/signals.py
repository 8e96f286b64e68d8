"""Signals-stage throughput: completion tokens/s of per-token log-probs + entropies from a causal LM.

A Qwen2-architecture model is built from a config (nothing downloaded): ``--size tiny`` (the lab's
~0.6M-parameter policy shape, vocabulary 151,936 so the log-softmax costs what a real one does) or
``--size 0.5b`` (Qwen2.5-0.5B's shape, ~0.49B parameters). Rollouts are random token ids:
``--rollouts`` prompts of ``--prompt-len`` tokens with completions of ``--completion-len``.

Rows printed, each timed over the same pairs after one warm-up batch:
  - ``rewardsmith``: :func:`rewardsmith.lm_signals.token_signals` at ``--batch-size``;
  - ``rewardsmith bs=1``: the same one sequence at a time (what batching buys);
  - ``trl``: the peer — TRL's forward over the padded batch plus ``selective_log_softmax`` and
    ``entropy_from_logits`` (what GRPOTrainer does for its per-token log-probs), same batches;
and the ratio of each to the peer.

    python bench/signals.py                                  # tiny model, CPU
    python bench/signals.py --size 0.5b --device cuda --dtype bfloat16 --rollouts 256 --completion-len 1024
"""

from __future__ import annotations

import argparse
import time

import torch

from rewardsmith.lm_signals import _DTYPES, token_signals

SIZES = {
    "tiny": {
        "hidden_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 384,
    },
    "0.5b": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
    },
}
VOCAB = 151_936


def build(size: str, dtype: str, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=VOCAB, max_position_embeddings=32768, tie_word_embeddings=True, **SIZES[size])
    return Qwen2ForCausalLM(cfg).to(device=device, dtype=_DTYPES[dtype]).eval()


@torch.no_grad()
def trl_peer(model, pairs, batch_size: int) -> None:
    """TRL's per-token log-probs and entropies of the completion tokens, batch by batch (right padding)."""
    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    device = next(model.parameters()).device
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        rows = [p + c for p, c in chunk]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        ids, mask = ids.to(device), mask.to(device)
        keep = max(len(c) for _, c in chunk)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep + 1).logits[:, :-1].float()
        selective_log_softmax(logits, ids[:, -keep:])
        entropy_from_logits(logits)


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    ap.add_argument("--rollouts", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--completion-len", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-bs1", action="store_true", help="leave out the one-at-a-time row (slow for big runs)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = build(args.size, args.dtype, args.device)
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)
    pairs = [
        (
            torch.randint(0, VOCAB, (args.prompt_len,), generator=g).tolist(),
            torch.randint(0, VOCAB, (args.completion_len,), generator=g).tolist(),
        )
        for _ in range(args.rollouts)
    ]
    tokens = args.rollouts * args.completion_len
    print(
        f"model: {args.size} ({params / 1e6:.1f}M parameters, vocab {VOCAB}), {args.dtype} on {args.device}; "
        f"{args.rollouts} rollouts x {args.completion_len} completion tokens after {args.prompt_len} prompt tokens"
    )
    warm = pairs[: args.batch_size]
    token_signals(model, warm, 0, args.batch_size, entropies=True)
    trl_peer(model, warm, args.batch_size)
    runs = {
        "rewardsmith": lambda: token_signals(model, pairs, 0, args.batch_size, entropies=True),
        "trl": lambda: trl_peer(model, pairs, args.batch_size),
    }
    if not args.skip_bs1:
        runs["rewardsmith bs=1"] = lambda: token_signals(model, pairs, 0, 1, entropies=True)
    seconds = {name: timed(fn) for name, fn in runs.items()}
    peer = tokens / seconds["trl"]
    print(f"{'':18} {'tokens/s':>12} {'vs trl':>8}")
    for name, s in seconds.items():
        print(f"{name:18} {tokens / s:12,.0f} {tokens / s / peer:7.2f}x")


if __name__ == "__main__":
    main()
