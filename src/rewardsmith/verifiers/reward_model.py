"""``reward_model``: sequence-classification reward models, local or remote, alone or as an ensemble.

The score of a (prompt, response) pair is the reward model's scalar output r (the logit of a
one-label ``AutoModelForSequenceClassification``), used as the verdict's score: with the default
``base: {correct: 1, wrong: 0}`` the reward is r itself, and the RM shapers (``par``, ``lsc``,
``centered``, ``meanstd``, ``clip``, ``minmax`` with ``score_key: null``) apply to it.

- **local** (``path``): transformers, loaded from a local directory; batched (``batch_size``),
  ``dtype``/``device``, ``max_length`` with ``truncation_side``; the prompt and response go
  through the tokenizer's chat template (user, assistant) when it has one, else prompt + response.
- **remote** (``url``): OpenRLHF's reward server (``protocol: openrlhf``; ``POST /get_reward``
  with ``{"query": [prompt + response], "prompts": [prompt]}`` → ``{"rewards": [...]}`` — what
  ``rewardsmith serve`` speaks), or vLLM's pooling endpoint (``protocol: vllm_pooling``;
  ``POST /pooling`` with ``{"model", "input": [text]}`` → ``{"data": [{"data": ...}]}``, the last
  token's value when it pools every token).
- **ensemble** (several entries under ``models``): ``mean``; ``min`` (worst-case optimisation,
  Coste et al. 2024, "Reward Model Ensembles Help Mitigate Overoptimization"); ``mean_minus_std``,
  mean − k·std (population std across members), an uncertainty penalty — Coste et al.'s UWO
  penalises the variance instead; the std keeps k in the reward's units.
- **fine-grained** (``segments: sentence | subsentence``; Wu et al. 2023, Fine-Grained Human Feedback):
  per-segment rewards from one or several RMs, summed per segment (:meth:`RewardModel.segment_rewards`),
  the sum as the score and the segments in the output's ``dense`` field (``unit: segment``).
- **PAR references** (Fu et al. 2025): the responses in ``meta.reference_responses`` are scored
  by the same model(s) and written to ``meta.ref_scores`` (``ref_scores_key``) for the shapers
  that read reference scores (``par``, ``lsc``, ``centered``).

Each unique (prompt, response) is scored once per model and cached for the verifier's lifetime
(references shared by a group are scored once). A failed model call (a remote outage, a
malformed reply, a non-finite score) makes the row *unknown* (status ``judge_failed``): reward
null, left out of the advantages — never 0.

    verifier:
      name: reward_model
      path: /models/my-rm          # or url: http://127.0.0.1:5000/get_reward
      batch_size: 8
      max_length: 2048
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..registry import Options, SpecError, register
from .base import JUDGE_FAILED, OK, Job, Verdict, Verifier
from .segments import segment


class ModelSource(BaseModel):
    """One reward model: a local directory (``path``) or a server (``url``)."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(default=None, description="local directory of a transformers sequence classifier")
    url: str | None = Field(default=None, description="remote RM endpoint (the full URL, e.g. .../get_reward)")
    protocol: Literal["openrlhf", "vllm_pooling"] = "openrlhf"
    model: str | None = Field(default=None, description="vllm_pooling: the served model name")
    segments: Literal["sentence", "subsentence", "response"] | None = Field(
        default=None, description="fine-grained: this RM's unit (default: the verifier's segments)"
    )
    weight: float = Field(default=1.0, description="fine-grained: a segment's reward is weight·(r − center)")
    center: float = Field(default=0.0, description="fine-grained: subtracted from r before weighting")
    positive_reward: float | None = Field(default=None, description="fine-grained: a segment's reward when r > 0")
    negative_reward: float | None = Field(default=None, description="fine-grained: a segment's reward when r ≤ 0")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if (self.path is None) == (self.url is None):
            raise ValueError("a reward model needs exactly one of path (local) or url (remote)")
        if (self.positive_reward is None) != (self.negative_reward is None):
            raise ValueError("give both positive_reward and negative_reward, or neither")
        if self.positive_reward is not None and (self.weight != 1.0 or self.center != 0.0):
            raise ValueError("positive_reward/negative_reward replace weight and center: give one or the other")
        return self

    def segment_reward(self, r: float) -> float:
        """A segment's reward from the RM's score r: ±reward by the sign of r (FineGrainedRLHF's
        classifier decision), else weight·(r − center)."""
        if self.positive_reward is not None:
            return self.positive_reward if r > 0 else self.negative_reward  # type: ignore[return-value]
        return self.weight * (r - self.center)

    def fine_grained(self) -> bool:
        return self.segments is not None or self.positive_reward is not None or self.weight != 1.0 or self.center != 0.0


class RewardModelOptions(Options):
    path: str | None = Field(default=None, description="local RM directory (shorthand for one entry of models)")
    url: str | None = Field(default=None, description="remote RM endpoint (shorthand for one entry of models)")
    protocol: Literal["openrlhf", "vllm_pooling"] = "openrlhf"
    model: str | None = Field(default=None, description="vllm_pooling: the served model name")
    models: list[ModelSource] = Field(default_factory=list, description="several RMs: an ensemble")
    ensemble: Literal["mean", "min", "mean_minus_std"] = "mean"
    k: float = Field(default=1.0, ge=0.0, description="mean_minus_std: the std coefficient")
    tokenizer: str | None = Field(default=None, description="local: tokenizer directory (default: the model's)")
    batch_size: int = Field(default=8, ge=1, description="local: sequences per forward pass")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field(default="cpu", description="local: torch device")
    max_length: int = Field(default=2048, ge=1, description="tokens kept per (prompt, response)")
    truncation_side: Literal["left", "right"] = Field(default="left", description="left keeps the response's end")
    chat_template: bool = Field(default=True, description="use the tokenizer's chat template when it has one")
    timeout_s: float = Field(default=60.0, gt=0, description="remote: per-request timeout")
    reference_key: str = Field(default="reference_responses", description="meta key of PAR's reference responses")
    ref_scores_key: str = Field(default="ref_scores", description="meta key the references' scores are written to")
    segments: Literal["sentence", "subsentence"] | None = Field(
        default=None, description="fine-grained rewards per sentence/sub-sentence (Wu et al. 2023); null: off"
    )

    @model_validator(mode="after")
    def _sources(self) -> RewardModelOptions:
        if (self.path or self.url) and self.models:
            raise ValueError("give either path/url or models, not both")
        if self.path and self.url:
            raise ValueError("a reward model needs exactly one of path (local) or url (remote)")
        if not (self.path or self.url or self.models):
            raise ValueError("reward_model needs path (local), url (remote) or models (an ensemble)")
        if self.segments is None and any(m.fine_grained() for m in self.models):
            raise ValueError("segments/weight/center/positive_reward of a model need the verifier's segments option")
        if self.segments is not None and (self.ensemble != "mean" or self.k != 1.0):
            raise ValueError("segments: the models' segment rewards are summed; ensemble and k do not apply")
        return self

    def sources(self) -> list[ModelSource]:
        if self.models:
            return list(self.models)
        return [ModelSource(path=self.path, url=self.url, protocol=self.protocol, model=self.model)]


def combine(scores: np.ndarray, how: str, k: float = 1.0) -> np.ndarray:
    """Ensemble scores ``(members, rows)`` → rows: mean, min, or mean − k·std (population std).
    A NaN from any member makes the row NaN (unknown)."""
    if how == "mean":
        return scores.mean(axis=0)
    if how == "min":
        return scores.min(axis=0)
    return scores.mean(axis=0) - k * scores.std(axis=0)


@dataclass(frozen=True)
class ModelVerdict(Verdict):
    """A verdict that also carries values for the record's meta (the references' RM scores) and,
    for fine-grained rewards, the per-segment rewards (``dense``)."""

    meta_update: dict[str, Any] = field(default_factory=dict)
    dense: tuple[float, ...] | None = None


class LocalRM:
    """A transformers sequence classifier from a local directory; r = the first logit."""

    def __init__(self, path: str, opts: RewardModelOptions):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.opts = opts
        self.tokenizer = AutoTokenizer.from_pretrained(opts.tokenizer or path, local_files_only=True)
        self.tokenizer.truncation_side = opts.truncation_side
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, dtype=getattr(torch, opts.dtype)
        ).to(opts.device)
        self.model.eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def text(self, prompt: str, response: str) -> str:
        tok = self.tokenizer
        if self.opts.chat_template and getattr(tok, "chat_template", None):
            chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            return tok.apply_chat_template(chat, tokenize=False)
        return prompt + response

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        out = []
        bs = self.opts.batch_size
        for start in range(0, len(pairs), bs):
            texts = [self.text(p, r) for p, r in pairs[start : start + bs]]
            enc = self.tokenizer(
                texts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.opts.max_length,
                add_special_tokens=False,
            ).to(self.opts.device)
            with self.torch.no_grad():
                logits = self.model(**enc).logits
            out.extend(logits[:, 0].float().cpu().tolist())
        return np.array(out, dtype=np.float64)


class RemoteRM:
    """A reward server: OpenRLHF's ``/get_reward`` or vLLM's ``/pooling``. Any failure → NaN scores."""

    def __init__(self, source: ModelSource, opts: RewardModelOptions):
        self.source = source
        self.opts = opts

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        import httpx

        nan = np.full(len(pairs), np.nan)
        if self.source.protocol == "openrlhf":
            body: dict[str, Any] = {"query": [p + r for p, r in pairs], "prompts": [p for p, _ in pairs]}
        else:
            body = {"model": self.source.model, "input": [p + r for p, r in pairs]}
        try:
            resp = httpx.post(self.source.url, json=body, timeout=self.opts.timeout_s, trust_env=False)
            resp.raise_for_status()
            values = parse_reply(resp.json(), self.source.protocol)
        except Exception:  # an outage or a malformed reply: unknown, never a score
            return nan
        return values if len(values) == len(pairs) else nan


def parse_reply(reply: Any, protocol: str) -> np.ndarray:
    """The scores in a server's reply; a null or non-number is NaN."""
    raw = reply["rewards"] if protocol == "openrlhf" else [_last_token_value(d["data"]) for d in reply["data"]]
    return np.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in raw])


def _last_token_value(pooled: Any) -> Any:
    """vLLM's pooled output for one input of a one-label model: a number, ``[r]`` (last-token
    pooling), or one value or ``[r]`` per token (its ``reward`` task pools every token): the
    sequence's score is the last token's."""
    if isinstance(pooled, list) and pooled and isinstance(pooled[-1], list):
        pooled = pooled[-1]
    if isinstance(pooled, list):
        return pooled[-1] if pooled else None
    return pooled


@register(
    "verifier",
    "reward_model",
    "Sequence-classification reward model(s), local or remote (OpenRLHF /get_reward, vLLM pooling); "
    "ensembles (mean, min, mean − k·std); segment-level rewards; scores PAR's reference responses.",
    "PAR (Fu et al., 2025); Coste et al. 2024 (RM ensembles); Wu et al. 2023 (fine-grained RLHF)",
)
class RewardModel(Verifier):
    Options = RewardModelOptions
    isolate: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True
    reads_prompt: ClassVar[bool] = True
    example_options: ClassVar[dict[str, Any]] = {"url": "http://127.0.0.1:5000/get_reward"}

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._members: list[Any] | None = None
        self._cache: list[dict[tuple[str, str], float]] = []
        self._lock = threading.Lock()
        self.scored_pairs = 0  # pairs sent to the model(s), cache misses only
        self.dense_unit = "segment" if self.options.segments else None

    def members(self) -> list[Any]:
        if self._members is None:
            srcs = self.options.sources()
            self._members = [LocalRM(s.path, self.options) if s.path else RemoteRM(s, self.options) for s in srcs]
            self._cache = [{} for _ in srcs]
        return self._members

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        refs = meta.get(self.options.reference_key)
        if refs is not None and not (isinstance(refs, list) and all(isinstance(r, str) for r in refs)):
            raise SpecError(f"meta.{self.options.reference_key} must be a list of strings")
        return Job(completion, None, {"prompt": meta.get("prompt", ""), "refs": refs or []})

    def check(self, job: Job) -> Verdict:
        return self.check_batch([job])[0]

    def member_scores(self, pairs: list[tuple[str, str]], members: Sequence[int] | None = None) -> np.ndarray:
        """Scores ``(members, rows)`` of ``pairs`` by each model (all, or the indices in ``members``);
        each unique pair is scored once per model (cached); NaN where a model gave no score."""
        with self._lock:
            models = self.members()
            out = []
            for m in range(len(models)) if members is None else members:
                cache = self._cache[m]
                todo = list(dict.fromkeys(p for p in pairs if p not in cache))
                if todo:
                    self.scored_pairs += len(todo)
                    for pair, value in zip(todo, models[m].score(todo)):
                        if np.isfinite(value):  # an unknown score is not remembered: a retry may succeed
                            cache[pair] = float(value)
                out.append([cache.get(p, math.nan) for p in pairs])
            return np.array(out, dtype=np.float64).reshape(len(out), len(pairs))

    def score_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Ensemble scores of ``pairs``, each unique pair scored once per model (cached)."""
        return combine(self.member_scores(pairs), self.options.ensemble, self.options.k)

    def segment_rewards(self, texts: list[tuple[str, str]]) -> list[np.ndarray]:
        """Fine-grained rewards (Wu et al. 2023, §2.2; allenai/FineGrainedRLHF ``FineGrainedReward``): per
        (prompt, response), one reward per segment of the finest partition of the models' segments.

        A model at ``sentence``/``subsentence`` scores, for each of its segments, the prompt with the response
        up to that segment's end (the segment in the context before it: what a causal sequence classifier sees
        at the segment's last token, where the authors place the reward); a ``response`` model scores the whole
        response and rewards the last segment (the authors' holistic completeness RM). Each model's segment
        rewards (:meth:`ModelSource.segment_reward`) are summed per segment. An empty response has one empty
        segment holding only the ``response`` models' rewards. NaN anywhere makes the row's rewards NaN."""
        sources = self.options.sources()
        grains = [s.segments or self.options.segments for s in sources]
        ends_of = [{g: [end for _, end in segment(text, g)] for g in set(grains) - {"response"}} for _, text in texts]
        partitions = [sorted({e for ends in by_grain.values() for e in ends}) or [0] for by_grain in ends_of]
        rows = [np.zeros(len(p)) for p in partitions]
        for m, (source, grain) in enumerate(zip(sources, grains)):
            wanted = []  # (row, segment index, the text the model scores)
            for i, ((prompt, text), part) in enumerate(zip(texts, partitions)):
                if grain == "response":
                    wanted.append((i, len(part) - 1, (prompt, text)))
                else:
                    wanted.extend((i, part.index(end), (prompt, text[:end])) for end in ends_of[i][grain])
            scores = self.member_scores([pair for _, _, pair in wanted], [m])[0]
            for (i, k, _), r in zip(wanted, scores):
                rows[i][k] += source.segment_reward(r) if np.isfinite(r) else math.nan
        return [row if np.isfinite(row).all() else np.full(len(row), math.nan) for row in rows]

    def check_batch(self, jobs: Sequence[Job]) -> list[Verdict]:
        pairs, spans = [], []
        for job in jobs:
            prompt = job.meta["prompt"]
            start = len(pairs)
            pairs.append((prompt, job.prediction))
            pairs.extend((prompt, ref) for ref in job.meta["refs"])
            spans.append((start, len(pairs)))
        if self.options.segments:
            rows = self.segment_rewards(pairs)
            scores = np.array([row.sum() for row in rows])
        else:
            scores = self.score_pairs(pairs)
        out: list[Verdict] = []
        for job, (start, end) in zip(jobs, spans):
            values = scores[start:end]
            if not np.isfinite(values).all():
                out.append(Verdict(math.nan, JUDGE_FAILED, "reward model gave no score (failed call or non-finite)"))
                continue
            update = {self.options.ref_scores_key: values[1:].tolist()} if job.meta["refs"] else {}
            dense = tuple(rows[start].tolist()) if self.options.segments else None
            out.append(ModelVerdict(float(values[0]), OK, "", update, dense))
        return out
