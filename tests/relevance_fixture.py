"""A tiny encoder built locally whose embeddings are hand-computable, for the ``relevance`` (R³) verifier.

No transformer layers (``num_hidden_layers=0``) and zero position/type embeddings, so a token's last hidden
state is LayerNorm(its word embedding); every word vector below has mean 0 and variance 1 over the 4 hidden
dimensions, which LayerNorm (weight 1, bias 0) leaves unchanged. So E(text) = the mean of its words' vectors.
"""

from __future__ import annotations

from pathlib import Path

WORD_VECTORS = {
    "cat": (1.0, -1.0, 1.0, -1.0),
    "dog": (1.0, -1.0, -1.0, 1.0),
    "sky": (1.0, 1.0, -1.0, -1.0),
    "the": (-1.0, 1.0, -1.0, 1.0),  # −cat
}
VOCAB = ["<pad>", "<unk>", *WORD_VECTORS]


def build_encoder(path: Path) -> Path:
    """Save the encoder under ``path`` (tokenizer in ``path/tokenizer``)."""
    import torch
    from transformers import BertConfig, BertModel

    from rm_fixture import word_tokenizer

    tok = word_tokenizer(VOCAB, model_max_length=64)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=4,
        num_hidden_layers=0,
        num_attention_heads=1,
        intermediate_size=4,
        max_position_embeddings=64,
        layer_norm_eps=1e-12,
        pad_token_id=0,
    )
    model = BertModel(cfg)
    with torch.no_grad():
        emb = model.embeddings
        emb.word_embeddings.weight.zero_()
        for i, word in enumerate(VOCAB):
            if word in WORD_VECTORS:
                emb.word_embeddings.weight[i] = torch.tensor(WORD_VECTORS[word])
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.LayerNorm.weight.fill_(1.0)
        emb.LayerNorm.bias.zero_()
    model.save_pretrained(path)
    tok.save_pretrained(path / "tokenizer")
    return path
