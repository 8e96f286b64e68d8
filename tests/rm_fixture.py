"""A tiny sequence-classification reward model built locally, whose scores are hand-computable.

Every attention/MLP output projection is zero, so the residual stream is the token embedding;
the final RMSNorm maps embedding (cos θ, sin θ, 0, …) to √d·(cos θ, sin θ, 0, …) and the score
head (1/√d, 0, …) reads cos θ. So r(text) = WORD_SCORES[last word of the text] (to ~1e-6).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

WORD_SCORES = {"good": 0.8, "great": 0.6, "ok": 0.1, "bad": -0.5, "awful": -0.9, "q": 0.0, "so": 0.3}
VOCAB = ["<pad>", "<eos>", "<unk>", *WORD_SCORES]
HIDDEN = 8


def word_tokenizer(vocab: list[str], **kwargs: Any):
    """A word-level tokenizer over ``vocab`` (whitespace and punctuation split words; "<unk>" otherwise)."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", **kwargs)


def build_rm(path: Path, scores: dict[str, float] | None = None) -> Path:
    """Save the RM under ``path`` (tokenizer in ``path/tokenizer``); ``scores`` overrides WORD_SCORES
    and adds tokens (e.g. punctuation, which the tokenizer splits off words) to the vocabulary."""
    scores = {**WORD_SCORES, **(scores or {})}
    vocab = [*VOCAB, *(t for t in scores if t not in VOCAB)]
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    tok = word_tokenizer(vocab, eos_token="<eos>")
    cfg = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        num_labels=1,
        pad_token_id=0,
        eos_token_id=1,
        rms_norm_eps=1e-12,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen2ForSequenceClassification(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = torch.zeros(len(vocab), HIDDEN)
        for i, tok_str in enumerate(vocab):
            theta = math.acos(scores.get(tok_str, 0.0))
            emb[i, 0], emb[i, 1] = math.cos(theta), math.sin(theta)
        model.model.embed_tokens.weight.copy_(emb)
        model.model.norm.weight.fill_(1.0)
        model.score.weight.zero_()
        model.score.weight[0, 0] = 1.0 / math.sqrt(HIDDEN)
    model.save_pretrained(path)
    # its own directory: beside config.json, AutoTokenizer would load the architecture's BPE class
    tok.save_pretrained(path / "tokenizer")
    return path


def expected(text: str) -> float:
    """The hand-computed score: the last word's."""
    return WORD_SCORES.get(text.split()[-1], 0.0)
