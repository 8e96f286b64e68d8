"""A tiny causal LM whose log-probs are known by hand: a bigram table written into a 1-layer Llama.

Every hidden size equals the vocabulary size; the token embedding is the identity, the attention
and MLP output projections are zero (each block adds nothing to the residual stream), so the
final RMSNorm sees the one-hot of the current token and scales it to sqrt(V) exactly; the LM head
holds ``TABLE[prev] / sqrt(V)`` in column ``prev``. The next-token logits after token i are then
``TABLE[i]``: log P(j | ..., i) = TABLE[i][j] − log Σ_k exp(TABLE[i][k]), whatever came before i.
"""

from __future__ import annotations

import math
from pathlib import Path

VOCAB = ["<pad>", "<bos>", "<unk>", "a", "b", "c", "</think>", "ok"]
ID = {t: i for i, t in enumerate(VOCAB)}
V = len(VOCAB)
# next-token logits after each token (rows: previous token, columns: next token)
TABLE = [
    [0, 0, 0, 0, 0, 0, 0, 0],  # <pad>
    [0, 0, 0, 2, 1, 0, 0, 0],  # <bos>
    [0, 0, 1, 1, 1, 1, 1, 1],  # <unk>
    [0, 0, 0, 0, 3, 1, 1, 0],  # a -> b likely
    [0, 0, 0, 1, 0, 2, 1, 1],  # b -> c likely
    [0, 0, 0, 2, 0, 0, 2, 1],  # c
    [0, 0, 0, 0, 0, 0, 0, 4],  # </think> -> ok
    [0, 0, 0, 1, 1, 1, 0, 0],  # ok
]
REF_TABLE = [[v / 2 for v in row] for row in TABLE]  # a flatter reference model


def logprob(table: list[list[float]], prev: str, nxt: str) -> float:
    """log P(nxt | prev) from a table, by hand."""
    row = table[ID[prev]]
    return row[ID[nxt]] - math.log(sum(math.exp(v) for v in row))


def entropy(table: list[list[float]], prev: str) -> float:
    row = table[ID[prev]]
    z = sum(math.exp(v) for v in row)
    return -sum(math.exp(v) / z * (v - math.log(z)) for v in row)


def seq_logprobs(table: list[list[float]], context: list[str], continuation: list[str]) -> list[float]:
    """Per-token log-probs of ``continuation`` after ``context`` (an empty context is <bos>)."""
    prev = (context or ["<bos>"])[-1]
    out = []
    for tok in continuation:
        out.append(logprob(table, prev, tok))
        prev = tok
    return out


def build_tokenizer():
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel(dict(ID), unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", unk_token="<unk>", eos_token="ok"
    )


def build_model(table: list[list[float]] = TABLE):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=V,
        hidden_size=V,
        intermediate_size=V,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=V,
        rms_norm_eps=0.0,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=7,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(V))
        model.model.norm.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
        model.lm_head.weight.copy_(torch.tensor(table, dtype=torch.float32).T / math.sqrt(V))
    return model.eval()


def save(directory: Path, table: list[list[float]] = TABLE) -> str:
    """Save the model and tokenizer to ``directory`` (a local path the signals stage can load)."""
    directory.mkdir(parents=True, exist_ok=True)
    build_model(table).save_pretrained(directory)
    build_tokenizer().save_pretrained(directory)
    return str(directory)
