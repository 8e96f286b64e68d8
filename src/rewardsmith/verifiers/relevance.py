"""``relevance``: R³, the regularised relevance reward (Kim & Seo 2024, "Preference-free Alignment Learning
with Regularized Relevance Reward", arXiv:2402.03469, later "Rethinking the Role of Proxy Rewards in Language
Model Alignment", EMNLP 2024; checked against the authors' code, naver-ai/rethinking-proxy-reward
``reward_model.py``, ``ReversedEngineeredRewardForInference`` and ``ContrieverModelForInference``).

With x the query, ŷ the response and y the reference answer (the record's ``answer``):

- relevance r(a, b) = E(a)·E(b), the dot product of a retriever's mean-pooled last hidden states (the
  authors use facebook/contriever; any local transformers encoder here), unnormalised;
- length incentive LI(ŷ) = (# words of ŷ)/100, repetition penalty RP(ŷ) = (# unique trigrams)/(# trigrams)
  (1 with fewer than 3 words), words being NLTK ``wordpunct_tokenize``'s ``\\w+|[^\\w\\s]+``, counted on ŷ
  cut at the first ``stop_strings`` and stripped;
- R³ = r(x, ŷ)·LI(ŷ)·RP(ŷ) for an open-ended query, and F(r(y, ŷ))·RP(ŷ) for a constrained one, with
  F(s) = s/3.5 · (max_sequence_length/100) (the authors' linear interpolation of [0, 3.5] onto
  [0, max_sequence_length/100]; they pass the generation limit, 512).

The query type is ``meta.qtype`` (``OPENENDED`` or ``CONSTRAINED``; the authors label it with an LLM). Each
term can be switched off as in the authors' flags (``length_incentive``, ``repetition_penalty``,
``relevance_scaling``, ``reward_branching``: off, it counts as 1; branching needs relevance scaling). As in
their code the relevance reads the response as given (only LI and RP see it cut at the stop strings), and the
authors' ``reward_baseline`` (subtracted in their PPO loop) is a ``base`` or shaping choice here. Gaming:
without RP, repeating the query scores both relevance and length (the authors saw 40% of responses copy the
question under relevance alone); with LI the reward grows with length without bound.

    verifier:
      name: relevance
      path: /models/contriever        # a local encoder directory; nothing is downloaded
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier

_WORDPUNCT = re.compile(r"\w+|[^\w\s]+")
QTYPES = ("OPENENDED", "CONSTRAINED")
RELEVANCE_RANGE = 3.5  # the authors' interpolation input range [0, 3.5]


def words(text: str) -> list[str]:
    """NLTK ``wordpunct_tokenize``: runs of word characters and runs of other non-space characters."""
    return _WORDPUNCT.findall(text)


def cut(text: str, stop_strings: Sequence[str]) -> str:
    """``text`` stripped of newlines/spaces at both ends and cut before the first stop string."""
    text = text.strip("\n ")
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return (text[: min(hits)] if hits else text).strip("\n ")


def length_incentive(tokens: list[str]) -> float:
    return len(tokens) / 100


def repetition_penalty(tokens: list[str]) -> float:
    trigrams = [" ".join(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(set(trigrams)) / len(trigrams) if trigrams else 1.0


def interpolate(relevance: float, max_sequence_length: int) -> float:
    """F: [0, 3.5] → [0, max_sequence_length/100], linearly (not clipped, as in the authors' code)."""
    return relevance / RELEVANCE_RANGE * (max_sequence_length / 100)


class Encoder:
    """A local transformers encoder; E(text) = the mean of its last hidden states over the text's tokens
    (left truncation, as the authors' Contriever wrapper). A text with no tokens embeds as 0."""

    def __init__(self, path: str, tokenizer: str | None, device: str, max_length: int | None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or path, local_files_only=True)
        self.tokenizer.truncation_side = "left"
        self.max_length = max_length or self.tokenizer.model_max_length
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding="longest", return_tensors="pt"
        ).to(self.device)
        with self.torch.no_grad():
            hidden = self.model(**enc)[0]
        mask = enc["attention_mask"][..., None].to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return pooled.float().cpu().numpy().astype(np.float64)


class RelevanceOptions(Options):
    path: str | None = Field(
        default=None, description="local directory of the retriever (a transformers encoder, e.g. Contriever)"
    )
    tokenizer: str | None = Field(default=None, description="tokenizer directory (default: the model's)")
    device: str = Field(default="cpu", description="torch device")
    batch_size: int = Field(default=8, ge=1, description="(query, response) pairs per forward pass")
    max_length: int | None = Field(default=None, ge=1, description="tokens per text (default: the tokenizer's)")
    length_incentive: bool = Field(default=True, description="multiply by LI = words/100")
    repetition_penalty: bool = Field(default=True, description="multiply by RP = unique/all trigrams")
    relevance_scaling: bool = Field(default=True, description="multiply by the retriever's relevance")
    reward_branching: bool = Field(default=True, description="constrained queries: F(relevance to the reference)")
    max_sequence_length: int = Field(default=512, ge=1, description="F's range: [0, max_sequence_length/100]")
    qtype_key: str = Field(default="qtype", description="meta key of the query type (OPENENDED | CONSTRAINED)")
    stop_strings: list[str] = Field(
        default_factory=lambda: ["\n\n\n\n", "\n\n--", "\n\n____"],
        description="LI and RP count the response up to the first of these (add your chat roles, e.g. 'USER:')",
    )

    @model_validator(mode="after")
    def _retriever(self) -> RelevanceOptions:
        if self.relevance_scaling and self.path is None:
            raise ValueError("path (a local retriever) is needed unless relevance_scaling is false")
        return self


@register(
    "verifier",
    "relevance",
    "R³ regularised relevance reward: retriever relevance × length incentive × repetition penalty, "
    "relevance to the reference for constrained queries.",
    "R³ (Kim & Seo, 2024)",
)
class RelevanceVerifier(Verifier):
    Options = RelevanceOptions
    isolate: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True
    reads_prompt: ClassVar[bool] = True
    example_options: ClassVar[dict[str, Any]] = {"path": "/models/contriever"}

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                o = self.options
                self._encoder = Encoder(o.path, o.tokenizer, o.device, o.max_length)  # type: ignore[arg-type]
            return self._encoder

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        return Job(completion, reference, {"prompt": meta.get("prompt", ""), "qtype": meta.get(self.options.qtype_key)})

    def check(self, job: Job) -> Verdict:
        return self.check_batch([job])[0]

    def relevance(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """E(a)·E(b) for each pair, in batches of ``batch_size`` pairs (the two sides in one forward pass)."""
        out: list[float] = []
        bs = self.options.batch_size
        for start in range(0, len(pairs), bs):
            chunk = pairs[start : start + bs]
            emb = self.encoder().embed([a for a, _ in chunk] + [b for _, b in chunk])
            out.extend(np.einsum("ij,ij->i", emb[: len(chunk)], emb[len(chunk) :]).tolist())
        return np.array(out, dtype=np.float64)

    def check_batch(self, jobs: Sequence[Job]) -> list[Verdict]:
        o = self.options
        branching = o.relevance_scaling and o.reward_branching
        out: list[Verdict | None] = [None] * len(jobs)
        pairs, rows = [], []
        for i, job in enumerate(jobs):
            qtype = job.meta["qtype"]
            if branching and qtype not in QTYPES:
                out[i] = Verdict(math.nan, BAD_REFERENCE, f"meta.{o.qtype_key} must be one of {', '.join(QTYPES)}")
            elif branching and qtype == "CONSTRAINED" and not job.reference:
                out[i] = Verdict(math.nan, BAD_REFERENCE, "a constrained query needs the reference answer")
            elif o.relevance_scaling:
                anchor = job.reference if branching and qtype == "CONSTRAINED" else job.meta["prompt"]
                pairs.append((anchor, job.prediction))
                rows.append(i)
        relevance = dict(zip(rows, self.relevance(pairs))) if pairs else {}
        for i, job in enumerate(jobs):
            if out[i] is not None:
                continue
            tokens = words(cut(job.prediction, o.stop_strings))
            rp = repetition_penalty(tokens) if o.repetition_penalty else 1.0
            rel = relevance.get(i, 1.0)
            if branching and job.meta["qtype"] == "CONSTRAINED":
                score, how = interpolate(rel, o.max_sequence_length), "F(r_y)"
            else:
                score, how = (length_incentive(tokens) if o.length_incentive else 1.0) * rel, "r_x·LI"
            out[i] = Verdict(score * rp, OK, f"{how}·RP: relevance={rel:.6g}, words={len(tokens)}, RP={rp:.6g}")
        return out  # type: ignore[return-value]
