"""The lab's policy: a small decoder-only transformer built from a config, and a local tokenizer.

Nothing is downloaded. The tokenizer is a word-level ``tokenizers`` model over the task's
alphabet (digits, ``+ - = ;``, the words ``chk``/``ok``/``so``, ``<think>``, ``</think>`` and
``####``) wrapped in ``PreTrainedTokenizerFast`` with left padding, so a completion's token
count is its number of reasoning symbols. The model is a Qwen2-architecture causal LM sized by
:class:`ModelConfig`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
WORDS = ("<think>", "</think>", "####", "chk", "ok", "so")
SYMBOLS = tuple("0123456789+-=;")
VOCAB = (PAD, EOS, UNK, *WORDS, *SYMBOLS)
# Longest alternatives first so "####" and "</think>" are single tokens; any other character is
# its own (unknown) token.
_SPLIT_PATTERN = "|".join(["</think>", "<think>", "####", "chk", "ok", "so", r"\d", r"[+\-=;]", r"\s+", "."])


@dataclass(frozen=True)
class ModelConfig:
    """Size of the policy (Qwen2 architecture; ~0.6M parameters at the defaults)."""

    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 160

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def count_tokens(text: str) -> int:
    """The number of tokens the task tokenizer makes of ``text`` (no special tokens added)."""
    return len(re.findall(_SPLIT_PATTERN, text))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The task tokenizer: every symbol of the trace alphabet is one token; left padding."""
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({tok: i for i, tok in enumerate(VOCAB)}, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    tok.model_max_length = 4096
    return tok


def build_model(config: ModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int) -> PreTrainedModel:
    """A freshly initialised Qwen2 causal LM with the tokenizer's pad/EOS ids wired into its
    config and generation config."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
    )
    model = Qwen2ForCausalLM(cfg)
    configure_generation(model, tokenizer)
    return model


def configure_generation(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> None:
    gen = model.generation_config
    gen.pad_token_id = tokenizer.pad_token_id
    gen.eos_token_id = tokenizer.eos_token_id
    gen.bos_token_id = None


def load_policy(path: Path, device: str) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A saved lab policy, in eval mode on ``device``, with its tokenizer padding on the left for generation."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    tokenizer.padding_side = "left"
    configure_generation(model, tokenizer)
    return model, tokenizer


def save_policy(
    path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, meta_name: str, meta: dict
) -> None:
    """Model, tokenizer and a JSON meta file (``meta_name``) in ``path`` — what :func:`load_policy` reads."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / meta_name).write_text(json.dumps(meta))


def publish_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Create the cache directory ``path`` whole or not at all: ``write`` fills a temporary sibling, which is
    then renamed into place; when another process published ``path`` first, theirs is kept."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, path)


def count_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())
