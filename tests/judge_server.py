"""A real OpenAI-compatible server for the judge tests: ``transformers serve`` on a tiny chat model.

The model is a randomly initialised Qwen2 causal LM built from a config and a byte-level
tokenizer built locally (no merges, so no training and no download); it has a ChatML chat
template, so the server formats requests exactly as it would for a real model. Its replies are
random text: the tests use them for the unknown-judgement paths and the transport (requests,
cache, budgets, outages); valid judgements are parsed from hand-written replies in unit tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_chat_model(
    path: Path, seed: int = 0, merges: tuple[tuple[str, str], ...] = (), chat_template: str = CHATML
) -> Path:
    """Save a ~0.1M-parameter chat model and its tokenizer to ``path``; returns ``path``.
    ``merges``: byte-level BPE merges added to the tokenizer (e.g. ``("[", "[")`` makes "[[" one token)."""
    import torch
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate([*specials, *sorted(alphabet), *(a + b for a, b in merges)])}
    core = Tokenizer(BPE(vocab, merges=list(merges)))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<|im_end|>", additional_special_tokens=specials[1:]
    )
    tok.chat_template = chat_template
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path | None, port: int, wait_s: float = 120.0) -> subprocess.Popen:
    """``transformers serve`` on 127.0.0.1:``port`` (``model_dir`` preloaded, else any local path on
    request); waits for /health."""
    import httpx

    exe = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    model = [str(model_dir)] if model_dir is not None else []
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            *model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"transformers serve did not answer /health within {wait_s:.0f}s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def build_scripted_chat_model(
    path: Path,
    reply: str,
    merges: tuple[tuple[str, str], ...] = (),
    branches: dict[str, str] | None = None,
    chat_template: str = CHATML,
) -> Path:
    """A chat model whose greedy reply to any conversation is ``reply``, built from a config.

    The transformer's layers are switched off (their output projections are zero), so the
    residual stream is the current token's embedding; embeddings are one-hot rows and the output
    head maps each token of the chat template's last character and of ``reply`` to the next one
    (the last to the end-of-turn token). A first-order chain can only spell a reply whose
    byte-level tokens are all different, which is checked.

    ``branches`` ``{last character: reply}``: other replies, for conversations whose generation prompt
    ``chat_template`` ends with that character instead of the newline (a template can branch on the
    messages, e.g. prefill the assistant turn after a given tool observation); all chains together
    must use distinct tokens.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    build_tiny_chat_model(path, merges=merges, chat_template=chat_template)
    tok = AutoTokenizer.from_pretrained(path)
    starts, chains = [], []
    for start_text, text in {"\n": reply, **(branches or {})}.items():  # CHATML's prompt ends "assistant\n"
        starts.append(tok.convert_tokens_to_ids(tok.tokenize(start_text)[-1]))
        chains.append([tok.convert_tokens_to_ids(t) for t in tok.tokenize(text)])
    used = starts + [t for chain in chains for t in chain]
    if len(set(used)) != len(used):
        raise ValueError(
            f"replies {[reply, *(branches or {}).values()]!r} or their start characters share a token; "
            "first-order chains cannot spell them"
        )
    n = len(tok)
    hidden = n + n % 2  # rotary embeddings need an even head size
    cfg = Qwen2Config(
        vocab_size=n,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        intermediate_size=8,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(n, hidden))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(n, hidden)
        for start, chain in zip(starts, chains):
            for here, nxt in zip([start, *chain], [*chain, tok.eos_token_id]):
                head[nxt, here] = 1.0
        model.lm_head.weight.copy_(head)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    return path


def merges_spelling(text: str) -> tuple[tuple[str, str], ...]:
    """Byte-level BPE merges that make every pre-token of ``text`` (words, punctuation runs) one
    token, so a scripted model can spell a reply whose characters repeat (JSON, "[[A+]]")."""
    from tokenizers import pre_tokenizers

    merges: list[tuple[str, str]] = []
    for piece, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text):
        for k in range(1, len(piece)):
            pair = (piece[:k], piece[k])
            if pair not in merges:
                merges.append(pair)
    return tuple(merges)
