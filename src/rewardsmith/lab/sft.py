"""Supervised fine-tuning of the overthinking base policy, cached on disk by config and seed.

The policy learns the task from traces that carry the necessary running-sum steps plus
redundant re-checks and restatements, and now and then a bare guess (see
:mod:`rewardsmith.lab.tasks`), so it starts verbose: the redundancy the length-shaped rewards are
meant to remove is known and countable, and the costly way to be short is within reach too.

Training is a plain PyTorch loop (loss on completion tokens only, AdamW with warmup and cosine
decay, fp32 by default — on CPU it measured faster than bf16 autocast —, batches of one difficulty at a time so little padding is computed).
The result is stored under ``cache_root()/<key>/`` where the key hashes the config, the seed
and :data:`CACHE_VERSION`; a second run with the same config loads it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .model import (
    ModelConfig,
    build_model,
    build_tokenizer,
    configure_generation,
    load_policy,
    publish_dir,
    save_policy,
)
from .tasks import (
    DEFAULT_TASK,
    MAX_TERMS,
    MIN_TERMS,
    SLIP_TASKS,
    TASKS,
    CarryStyle,
    Problem,
    TraceStyle,
    sft_trace,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

CACHE_VERSION = 2  # bump when the trace format, tokenizer or training loop changes


@dataclass(frozen=True)
class SFTConfig:
    """The base policy's SFT run. ``task`` picks the trace family (:mod:`rewardsmith.lab.tasks`);
    ``style`` defaults to that task's (``CarryStyle`` or ``TraceStyle``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    task: str = DEFAULT_TASK
    style: TraceStyle | CarryStyle | None = None
    min_terms: int = MIN_TERMS
    max_terms: int = MAX_TERMS
    n_train: int = 20000
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    bf16: bool = False  # fp32 measured faster on CPU (docs/lab.md)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {list(TASKS)}")
        if self.style is None:
            object.__setattr__(self, "style", CarryStyle() if self.task in SLIP_TASKS else TraceStyle())
        elif isinstance(self.style, CarryStyle) != (self.task in SLIP_TASKS):
            raise ValueError(f"task {self.task!r} does not take a {type(self.style).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)


def cache_root() -> Path:
    """``$REWARDSMITH_CACHE/lab`` if set, else ``~/.cache/rewardsmith/lab``."""
    base = os.environ.get("REWARDSMITH_CACHE")
    return Path(base) / "lab" if base else Path.home() / ".cache" / "rewardsmith" / "lab"


def cache_key(config: SFTConfig, seed: int) -> str:
    """Stable hash of everything that determines the trained weights."""
    payload = json.dumps({"config": config.to_dict(), "seed": seed, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def encode_example(tokenizer: PreTrainedTokenizerFast, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Input ids (prompt + completion + EOS) and labels (-100 over the prompt)."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return p + c, [-100] * len(p) + c


def _lr_at(step: int, config: SFTConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _by_difficulty(problems: list[Problem]) -> dict[int, list[Problem]]:
    out: dict[int, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.difficulty, []).append(p)
    return out


def train_sft(
    config: SFTConfig,
    problems: list[Problem],
    seed: int,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, list[float]]:
    """Train a fresh policy on overthinking traces of ``problems``; returns (model, tokenizer,
    loss per step). ``progress(step, loss)`` is called after every step."""
    import torch

    tokenizer = build_tokenizer()
    model = build_model(config.model, tokenizer, seed).to(device)
    model.train()
    rng = random.Random(seed)
    pools = _by_difficulty(problems)
    levels = sorted(pools)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    losses: list[float] = []
    device_type = torch.device(device).type
    for step in range(config.steps):
        pool = pools[levels[step % len(levels)]]
        rows = [
            encode_example(tokenizer, p.prompt, sft_trace(p, rng, config.style))
            for p in rng.choices(pool, k=config.batch_size)
        ]
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, lab) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            mask[i, : len(ids)] = 1
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config)
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=config.bf16):
            out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(out.loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
    model.eval()
    configure_generation(model, tokenizer)
    return model, tokenizer, losses


def load_or_train(
    config: SFTConfig,
    problems: list[Problem],
    seed: int,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, dict]:
    """The cached base policy for ``(config, seed)``, training (and caching) it if absent.
    Returns (model, tokenizer, info) with info = {key, path, cached, seconds, losses}."""
    key = cache_key(config, seed)
    path = (cache_dir or cache_root()) / key
    meta_file = path / "sft_meta.json"
    if meta_file.exists():
        model, tokenizer = load_policy(path, device)
        return model, tokenizer, {**json.loads(meta_file.read_text()), "key": key, "path": str(path), "cached": True}
    t0 = time.perf_counter()
    model, tokenizer, losses = train_sft(config, problems, seed, device=device, progress=progress)
    meta = {"config": config.to_dict(), "seed": seed, "seconds": time.perf_counter() - t0, "losses": losses}
    publish_dir(path, lambda tmp: save_policy(tmp, model, tokenizer, "sft_meta.json", meta))
    return model, tokenizer, {**meta, "key": key, "path": str(path), "cached": False}
