"""Reward models trained in the lab, for the RM-based specs (``rm_concise``, ``rm_biased_raw``, ``rm_biased_par``).

The lab replaces the rule reward by a sequence-classification reward model trained on preference
pairs from the task, then loads it from disk through the ordinary ``reward_model`` verifier:

- ``concise`` — a conciseness-aware RM in the spirit of "Efficient Reasoning via Reward Model"
  (correct-and-short over correct-and-long over wrong): pairs prefer a correct response over a
  wrong one, and among two correct ones the shorter.
- ``biased`` — the classic length bias PAR (Fu et al. 2025) sets out to tame: pairs prefer a
  correct response over a wrong one, and, at equal correctness, the *longer* one. A policy can
  then raise this RM's score by writing more, right or wrong.

Candidates per training prompt: ``samples`` completions of the base policy (temperature 1, as GRPO
samples them) plus the task's necessary trace (correct and short, so every prompt has a correct
candidate within the policy's reach); each labelled by the task's verifier and measured in
tokens. Pairs are drawn per prompt from all ordered (chosen, rejected) candidates the kind
prefers, at most ``pairs_per_prompt``; a fifth of the prompts are held out to measure pair
accuracy. The RM is the base policy's backbone with a fresh one-logit score head (InstructGPT's
recipe: the RM starts from the SFT model), trained with the Bradley–Terry loss
−log σ(r_chosen − r_rejected) on ``prompt + response`` as the verifier will score it. It is cached
under ``cache_root()/rm/<key>`` (key: a hash of the base weights, the config, the kind and the seed).

A lab spec names a lab RM by ``path: lab-rm:<kind>`` in its ``reward_model`` verifier;
:func:`resolve_lab_models` trains or loads it and writes its directory into the spec.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evaluate import TASK_VERIFIER, answer_is_correct, generate
from .model import publish_dir
from .sft import cache_root
from .tasks import Problem, necessary_trace

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

KINDS = ("concise", "biased")
LAB_RM_PREFIX = "lab-rm:"
RM_CACHE_VERSION = 1  # bump when the pair construction or the training loop changes
# candidates already sampled in this process, shared by the RM kinds (key: base weights, config, seed)
_SAMPLED: dict[str, list[list[Candidate]]] = {}


@dataclass(frozen=True)
class RMConfig:
    prompts: int = 40  # training problems whose candidates make the pairs
    samples: int = 4  # base-policy completions per prompt
    max_new_tokens: int = 128  # the lab sets it to the RL budget (max_completion_length)
    pairs_per_prompt: int = 10
    steps: int = 40
    batch_size: int = 16  # pairs per step
    lr: float = 1e-3
    held_out: float = 0.2  # share of prompts whose pairs only measure accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    response: str
    correct: bool
    tokens: int


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


def prefers(kind: str, a: Candidate, b: Candidate) -> bool:
    """Whether the ``kind`` RM should score ``a`` above ``b``: correct over wrong; at equal
    correctness shorter (``concise``, among correct ones only) or longer (``biased``, always)."""
    if kind not in KINDS:
        raise ValueError(f"unknown lab RM kind {kind!r}; choose from {list(KINDS)}")
    if a.correct != b.correct:
        return a.correct
    if kind == "concise":
        return a.correct and a.tokens < b.tokens
    return a.tokens > b.tokens


def preference_pairs(prompt: str, candidates: Sequence[Candidate], kind: str, limit: int, rng: random.Random):
    """Up to ``limit`` distinct (chosen, rejected) pairs of one prompt's candidates, drawn at random."""
    unique = list({c.response: c for c in candidates}.values())
    pairs = [Pair(prompt, a.response, b.response) for a in unique for b in unique if a is not b and prefers(kind, a, b)]
    rng.shuffle(pairs)
    return pairs[:limit]


def candidates(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    samples: int,
    max_new_tokens: int,
) -> list[list[Candidate]]:
    """Per problem: ``samples`` sampled completions of ``policy`` and the necessary trace, labelled by the task
    verifier (tokens: EOS included, as TRL counts them)."""
    from ..verifiers.exact import ExactVerifier

    verifier = ExactVerifier(**{k: v for k, v in TASK_VERIFIER.items() if k != "name"})
    gens = generate(policy, tokenizer, [p.prompt for p in problems for _ in range(samples)], max_new_tokens, 256, 1.0)
    out = []
    for i, p in enumerate(problems):
        rows = [
            Candidate(g.text, answer_is_correct(verifier, g.text, p.answer), g.num_tokens)
            for g in gens[i * samples : (i + 1) * samples]
        ]
        trace = necessary_trace(p.digits)
        n = len(tokenizer(trace, add_special_tokens=False)["input_ids"]) + 1
        rows.append(Candidate(trace, answer_is_correct(verifier, trace, p.answer), n))
        out.append(rows)
    return out


def _encode(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]):
    """Right-padded ids of ``texts`` as the ``reward_model`` verifier encodes them (no special tokens)."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        return tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side


def pair_accuracy(model: Any, tokenizer: PreTrainedTokenizerFast, pairs: Sequence[Pair], batch: int = 128) -> float:
    """Share of pairs the RM orders as preferred (r_chosen > r_rejected); NaN with no pairs."""
    import torch

    if not pairs:
        return float("nan")
    right = 0
    with torch.no_grad():
        for s in range(0, len(pairs), batch):
            chunk = pairs[s : s + batch]
            enc = _encode(tokenizer, [p.prompt + p.chosen for p in chunk] + [p.prompt + p.rejected for p in chunk])
            r = model(**enc).logits[:, 0]
            right += int((r[: len(chunk)] > r[len(chunk) :]).sum())
    return right / len(pairs)


def reward_model_from_policy(policy: PreTrainedModel, seed: int):
    """A one-logit sequence classifier with ``policy``'s backbone weights and a fresh score head."""
    import torch
    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(policy.config)
    cfg.num_labels = 1
    cfg.architectures = None
    torch.manual_seed(seed)
    rm = AutoModelForSequenceClassification.from_config(cfg)
    missing, _ = rm.load_state_dict(policy.state_dict(), strict=False)
    if any(not k.startswith("score.") for k in missing):  # only the head may be new
        raise ValueError(f"the policy's weights do not fit a sequence classifier of its config: missing {missing}")
    return rm


def train_reward_model(
    rm: Any, tokenizer: PreTrainedTokenizerFast, pairs: Sequence[Pair], config: RMConfig, seed: int
) -> list[float]:
    """Bradley–Terry training of ``rm`` on ``pairs`` (−log σ(r_chosen − r_rejected), AdamW); returns the losses."""
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW(rm.parameters(), lr=config.lr, weight_decay=0.0)
    rm.train()
    losses = []
    for _ in range(config.steps if pairs else 0):
        chunk = rng.sample(list(pairs), min(config.batch_size, len(pairs)))
        enc = _encode(tokenizer, [p.prompt + p.chosen for p in chunk] + [p.prompt + p.rejected for p in chunk])
        r = rm(**enc).logits[:, 0].float()
        loss = -torch.nn.functional.logsigmoid(r[: len(chunk)] - r[len(chunk) :]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    rm.eval()
    return losses


def split_pairs(per_prompt: Sequence[list[Pair]], held_out: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out) pairs, split by prompt so held-out prompts are never trained on."""
    order = list(range(len(per_prompt)))
    random.Random(seed).shuffle(order)
    n_held = round(held_out * len(order))
    held = {i for i in order[:n_held]}
    train = [p for i, ps in enumerate(per_prompt) if i not in held for p in ps]
    test = [p for i, ps in enumerate(per_prompt) if i in held for p in ps]
    return train, test


def _weights_digest(model: PreTrainedModel) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


def load_or_train_rm(
    kind: str,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    seed: int,
    config: RMConfig | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The lab RM of ``kind`` for this base policy, trained and saved on first use.

    Returns its info: ``path`` (model directory), ``tokenizer`` (its tokenizer directory), ``held_out_accuracy``,
    ``train_accuracy``, ``pairs``, ``seconds``, ``cached``."""
    config = config or RMConfig()
    if kind not in KINDS:
        raise ValueError(f"unknown lab RM kind {kind!r}; choose from {list(KINDS)}")
    payload = {"kind": kind, "config": config.to_dict(), "seed": seed, "version": RM_CACHE_VERSION}
    base = _weights_digest(policy)
    key = hashlib.sha256(json.dumps({**payload, "base": base}, sort_keys=True).encode()).hexdigest()
    path = (cache_dir or cache_root()) / "rm" / key[:16]
    meta_file = path / "rm_meta.json"
    if meta_file.exists():
        return {**json.loads(meta_file.read_text()), "cached": True}
    import torch

    t0 = time.perf_counter()
    rng = random.Random(seed)
    chosen = rng.sample(list(problems), min(config.prompts, len(problems)))
    sampled = json.dumps([base, config.to_dict(), seed, RM_CACHE_VERSION])
    if sampled not in _SAMPLED:
        torch.manual_seed(seed)
        _SAMPLED[sampled] = candidates(policy, tokenizer, chosen, config.samples, config.max_new_tokens)
    cands = _SAMPLED[sampled]
    per_prompt = [preference_pairs(p.prompt, c, kind, config.pairs_per_prompt, rng) for p, c in zip(chosen, cands)]
    train, test = split_pairs(per_prompt, config.held_out, seed)
    rm = reward_model_from_policy(policy, seed)
    losses = train_reward_model(rm, tokenizer, train, config, seed)
    info = {
        **payload,
        "path": str(path),
        "tokenizer": str(path / "tokenizer"),
        "pairs": len(train),
        "held_out_pairs": len(test),
        "train_accuracy": pair_accuracy(rm, tokenizer, train),
        "held_out_accuracy": pair_accuracy(rm, tokenizer, test),
        "candidates_correct": sum(c.correct for cs in cands for c in cs) / max(1, sum(len(cs) for cs in cands)),
        "final_loss": losses[-1] if losses else None,
        "seconds": time.perf_counter() - t0,
    }

    def write(tmp: Path) -> None:
        rm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp / "tokenizer")  # apart: beside config.json AutoTokenizer picks Qwen2's class
        (tmp / "rm_meta.json").write_text(json.dumps(info))

    publish_dir(path, write)
    if log is not None:
        log(
            f"lab RM '{kind}': {len(train)} pairs, held-out pair accuracy {info['held_out_accuracy']:.3f} "
            f"({info['seconds']:.1f} s), saved in {path}"
        )
    return {**info, "cached": False}


def lab_rm_kinds(spec: dict[str, Any]) -> list[str]:
    """The lab RM kinds a spec's ``reward_model`` verifier names (``path: lab-rm:<kind>``); an unknown kind is a
    ``SpecError``."""
    from ..registry import SpecError

    kinds = [str(v["path"])[len(LAB_RM_PREFIX) :] for v in _rm_verifiers(spec)]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SpecError(
            f"reward_model path: unknown lab RM {unknown}; choose from {[LAB_RM_PREFIX + k for k in KINDS]}"
        )
    return kinds


def _rm_verifiers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    verifier = spec.get("verifier")
    routed = isinstance(verifier, dict) and "name" not in verifier  # one verifier per data source
    entries = list(verifier.values()) if routed else [verifier]
    return [
        v
        for v in entries
        if isinstance(v, dict)
        and v.get("name") == "reward_model"
        and isinstance(v.get("path"), str)
        and v["path"].startswith(LAB_RM_PREFIX)
    ]


def resolve_lab_models(spec: dict[str, Any], trained: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``spec`` whose ``lab-rm:<kind>`` paths are the directories of ``trained(kind)``'s RM
    (and its tokenizer); other specs come back unchanged."""
    if not lab_rm_kinds(spec):
        return spec
    out = copy.deepcopy(spec)
    for v in _rm_verifiers(out):
        info = trained(v["path"][len(LAB_RM_PREFIX) :])
        v["path"], v["tokenizer"] = info["path"], info["tokenizer"]
    return out
