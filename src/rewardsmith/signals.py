"""The signals stage: per-token log-probs and entropies of each rollout, computed once per batch.

A component that reads model signals names them in its ``needs_signals`` tag (a set of names
from :data:`SIGNALS`); the pipeline fetches the union of every component's names once per batch
before shaping, and each component reads them from ``ctx.signals``. Each signal comes from the
records when they carry it (``meta.token_logprobs``, ``meta.ref_token_logprobs``,
``meta.entropies``: vLLM's returned log-probs, verl's ``old_log_probs``/``ref_log_prob``, the TRL
adapter's policy log-probs) and otherwise from the causal LM of the spec's ``signals`` key
(:mod:`rewardsmith.lm_signals`, imported only then: this module needs no torch).

Log-probs of *given* continuations (a follow-up message after the answer, the reference answer
after the history) are the ``continuations`` signal: :meth:`Signals.continuation_logprobs` scores
(context, continuation) text pairs, batched, each distinct pair once per batch.

    >>> from rewardsmith.batch import Batch
    >>> meta = {"token_logprobs": [-0.5, -1.0], "entropies": [0.2, 0.1]}
    >>> recs = [{"prompt_id": "q", "completion": "a b", "meta": meta}]
    >>> sig = Signals(Batch.from_records(recs))
    >>> sig.get("token_logprobs")[0].tolist(), sig.get("entropies")[0].tolist()
    ([-0.5, -1.0], [0.2, 0.1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .batch import Batch

SIGNALS: dict[str, str] = {
    "token_logprobs": "log π(y_t | x, y_<t) of each completion token (meta.token_logprobs, else the signals model)",
    "ref_token_logprobs": "the same under the frozen reference (meta.ref_token_logprobs, else signals.ref_model)",
    "entropies": "entropy of the next-token distribution at each completion token (meta.entropies, else the model)",
    "continuations": "log-probs of given continuations after a given context (always the signals model)",
}
# Signals read from a forward pass over prompt + completion: one pass gives log-probs and entropies.
_PER_TOKEN = ("token_logprobs", "ref_token_logprobs", "entropies")


class SignalError(ValueError):
    """A component needs a signal that neither the records nor the spec's ``signals`` model give."""


class Scorer(Protocol):
    """What the stage needs from a model: per-token log-probs (and entropies) of continuations."""

    def score(
        self, pairs: Sequence[tuple[str, str]], entropies: bool
    ) -> list[tuple[np.ndarray, np.ndarray | None]]: ...

    def count_tokens(self, text: str) -> int: ...


def required_signals(components: Sequence[Any]) -> set[str]:
    """The union of the components' ``needs_signals`` sets (a component without the tag needs none)."""
    out: set[str] = set()
    for c in components:
        names = getattr(c, "needs_signals", False) or ()
        unknown = set(names) - set(SIGNALS)
        if unknown:
            raise ValueError(
                f"{type(c).__name__}.needs_signals names unknown signals {sorted(unknown)}; known: {', '.join(SIGNALS)}"
            )
        out |= set(names)
    return out


class Signals:
    """One batch's signals, each computed at most once (records first, the model for the rest).

    ``model``/``ref_model`` are callables returning a :class:`Scorer` (loaded on first use).
    """

    def __init__(
        self, batch: Batch, model: Callable[[], Scorer] | None = None, ref_model: Callable[[], Scorer] | None = None
    ):
        self.batch = batch
        self._model, self._ref_model = model, ref_model
        self._cache: dict[str, list[np.ndarray]] = {}
        self._pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def prefetch(self, names: set[str]) -> None:
        """Fetch the per-token signals among ``names`` (the model's log-probs and entropies come from one pass)."""
        for name in _PER_TOKEN:
            if name in names:
                self.get(name)

    def get(self, name: str) -> list[np.ndarray]:
        """Per-row arrays of the per-token signal ``name`` (one value per completion token): the
        records', else a model's."""
        if name not in _PER_TOKEN:
            raise KeyError(f"unknown per-token signal {name!r}; known: {', '.join(_PER_TOKEN)}")
        if name in self._cache:
            return self._cache[name]
        given = [_given(m, name) for m in self.batch.metas]
        missing = [i for i, v in enumerate(given) if v is None]
        if missing:
            pairs = [(self.batch.prompts[i], self.batch.completions[i]) for i in missing]
            if name == "ref_token_logprobs":
                if self._ref_model is None:
                    raise SignalError(self._absent(name, missing, "signals.ref_model"))
                scored = [lp for lp, _ in self._ref_model().score(pairs, entropies=False)]
            else:
                if self._model is None:
                    raise SignalError(self._absent(name, missing, "signals.model"))
                # one pass gives log-probs and entropies, shared with components scoring the same pairs
                scored = [ent if name == "entropies" else lp for lp, ent in self.continuations(pairs)]
            for i, values in zip(missing, scored):
                given[i] = values
        self._cache[name] = given  # type: ignore[assignment]
        return self._cache[name]

    def _absent(self, name: str, missing: list[int], where: str) -> str:
        return (
            f"{len(missing)} of {len(self.batch)} records carry no meta.{name} (first: record {missing[0]}) "
            f"and the spec has no {where} to compute it"
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the signals model's tokenizer (as the model scores a continuation)."""
        if self._model is None:
            raise SignalError("counting tokens needs the spec's signals.model")
        return self._model().count_tokens(text)

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[np.ndarray]:
        """Per-token log P(continuation | context) for each (context, continuation) text pair (signals model)."""
        return [lp for lp, _ in self.continuations(pairs)]

    def continuations(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-token (log-probs, entropies) of each continuation after its context; each distinct pair scored once."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._pairs))
        if todo:
            if self._model is None:
                raise SignalError(
                    "a component scores continuations (follow-ups, reference answers, phases) and the "
                    "spec has no signals.model to compute them"
                )
            for pair, (lp, ent) in zip(todo, self._model().score(todo, entropies=True)):
                self._pairs[pair] = (lp, ent)  # type: ignore[assignment]
        return [self._pairs[p] for p in pairs]  # type: ignore[misc]


def _given(meta: dict[str, Any], name: str) -> np.ndarray | None:
    value = meta.get(name)
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.full(2, np.nan)  # not a flat list of numbers: reported below
    wrong_sign = (arr < 0).any() if name == "entropies" else (arr > 1e-6).any()
    if arr.ndim != 1 or not np.isfinite(arr).all() or wrong_sign:
        raise SignalError(
            f"meta.{name} must be a flat list of finite "
            f"{'non-negative' if name == 'entropies' else 'non-positive'} floats"
        )
    return arr


def token_mean(values: np.ndarray) -> float:
    """Mean over tokens; 0 for no tokens (an empty completion, an empty phase)."""
    return float(np.mean(values)) if len(values) else 0.0
