"""``reasoning_gym``: delegate to reasoning-gym's own scorer (exact = 1.0, partial credit allowed).

The record's ``meta`` carries the reasoning-gym entry, either whole (``meta.entry``) or as its
``metadata`` (``meta.metadata`` with ``source_dataset``); the record's ``answer`` is the
entry's answer. The answer is read from ``<answer>...</answer>`` (reasoning-gym's convention),
then ``\\boxed{}``, ``Answer:``. Requires the ``gym`` extra.

    >>> import reasoning_gym
    >>> from rewardsmith.verifiers.reasoning_gym import ReasoningGymVerifier
    >>> entry = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=1)[0]
    >>> v = ReasoningGymVerifier()
    >>> v.check(v.job(f"<answer>{entry['answer']}</answer>", entry["answer"], {"entry": entry})).score
    1.0
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..registry import Options, register
from .base import BAD_REFERENCE, OK, Job, Verdict, Verifier
from .extract import extract_answer


class ReasoningGymOptions(Options):
    dataset: str | None = Field(default=None, description="dataset name; default: the entry's metadata.source_dataset")
    extract: list[Literal["answer_tag", "boxed", "hash", "answer_colon"]] = Field(
        default=["answer_tag", "boxed", "answer_colon"], min_length=1
    )


@register(
    "verifier",
    "reasoning_gym",
    "Delegates to reasoning-gym's score_answer for the entry in meta (partial credit).",
    "reasoning-gym (Stojanovski et al., 2025)",
)
class ReasoningGymVerifier(Verifier):
    Options = ReasoningGymOptions

    def extract(self, completion: str) -> str | None:
        return extract_answer(completion, self.options.extract)

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        pred = self.extract(completion)
        if pred is None:
            return None
        entry = meta.get("entry")
        if entry is None:
            entry = {"answer": reference, "metadata": meta.get("metadata", {})}
        elif reference is not None and entry.get("answer") is None:
            entry = {**entry, "answer": reference}
        return Job(pred, reference, entry)

    def warm_up(self) -> None:
        import reasoning_gym  # noqa: F401  (seconds to import: never on an item's clock)

    def check(self, job: Job) -> Verdict:
        import reasoning_gym

        entry = job.meta or {}
        name = self.options.dataset or (entry.get("metadata") or {}).get("source_dataset")
        if not name:
            return Verdict(
                float("nan"), BAD_REFERENCE, "no dataset: set the option 'dataset' or meta.metadata.source_dataset"
            )
        try:
            score_fn = reasoning_gym.get_score_answer_fn(name)
        except Exception as exc:
            return Verdict(float("nan"), BAD_REFERENCE, f"unknown reasoning-gym dataset {name!r}: {exc}")
        score = float(score_fn(job.prediction, entry))
        return Verdict(min(1.0, max(0.0, score)), OK)
