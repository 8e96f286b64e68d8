"""TRL-style reward functions as verifiers: ``f(completions, **columns) -> list[float | None]``.

A spec names the function by import path (``verifier: {name: "trl.rewards:accuracy_reward",
completion_format: conversational}``), or gives it from Python (``{"name": my_function}``). It
then runs inside rewardsmith's engine like any verifier: in worker processes with the hard
timeout, identical rollouts verified once, the result shaped by the spec. It is called with
keywords, once per chunk of rollouts, never per rollout:

- ``completions``: the completion texts (``completion_format: standard``) or, with
  ``conversational``, ``[{"role": "assistant", "content": text}]`` each (a conversational
  record's own assistant messages, when it has them);
- ``prompts``: the prompt texts (conversational: ``[{"role": "user", "content": text}]``);
- the record's fields ``answer`` (also as ``solution``, unless ``meta`` has its own), ``prompt_id``,
  ``data_source``, ``num_tokens``, ``truncated``, ``step`` (None where a record has none), every
  key of ``meta``, and ``completion_ids`` when ``meta.token_ids`` holds them.

Each returned value is the verifier's score: with the default ``base`` (correct 1, wrong 0) the
reward equals it, ``correct`` is true when it is ≥ 1. ``None`` (or NaN) means the function cannot
judge that rollout (TRL's meaning): ``correct`` is null, status ``bad_reference``, and the TRL
adapter returns None for it. A function that raises, or returns the wrong number of values,
scores its chunk ``error``; a value that is not a finite number scores its rollout ``error``.

    >>> def last_word(completions, solution, **columns):
    ...     return [None if s is None else float(c.split()[-1] == s) for c, s in zip(completions, solution)]
    >>> v = RewardFunctionVerifier.bind(last_word, "last_word")()
    >>> [x.score for x in v.check_batch([v.job("so 4", "4", {}), v.job("so 5", "4", {})])]
    [1.0, 0.0]

(In a spec the function must live in an importable module: the workers import it by name.)
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Callable, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..registry import Options
from .base import BAD_REFERENCE, ERROR, OK, Job, Verdict, Verifier

if TYPE_CHECKING:
    from ..batch import Batch

RewardFunction = Callable[..., Sequence["float | None"]]
_RESERVED = ("completions",)  # never taken from meta: it is the function's first argument
_TURNS = "completions"  # where a job keeps a conversational completion's assistant messages (not a column)


class RewardFunctionOptions(Options):
    completion_format: Literal["standard", "conversational"] = "standard"


class RewardFunctionVerifier(Verifier):
    """Runs a TRL-style reward function as a verifier (see the module docstring).
    Build one with ``RewardFunctionVerifier.bind(function, name)(completion_format=...)``."""

    Options = RewardFunctionOptions
    function: ClassVar[RewardFunction]

    @classmethod
    def bind(cls, function: RewardFunction, name: str) -> type[RewardFunctionVerifier]:
        """A verifier class running ``function``, registered under ``name`` (the spec's)."""
        doc = (getattr(function, "__doc__", None) or "").strip().partition("\n")[0]
        return type(
            cls.__name__,
            (cls,),
            {
                "function": staticmethod(function),
                "name": name,
                "__doc__": cls.__doc__,
                "description": doc or f"TRL-style reward function {name}",
            },
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The bound class is made at run time: workers rebuild it from the function (pickled by reference).
        return _rebuild, (type(self).function, self.name, self.options)

    @property
    def cache_key(self) -> str:
        # Two callable objects of one class differ by their state: the pickle tells them apart.
        digest = hashlib.sha256(pickle.dumps(type(self).function)).hexdigest()[:16]
        return f"{super().cache_key}:{digest}"

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job:
        columns = {k: v for k, v in (meta or {}).items() if k not in _RESERVED}
        if "token_ids" in columns:
            columns.setdefault("completion_ids", columns["token_ids"])
        columns.setdefault("solution", reference)
        columns["answer"] = reference
        return Job(completion, reference, columns)

    def job_for(self, batch: Batch, i: int, extra: dict[str, Any] | None = None) -> Job:
        job = self.job(batch.completions[i], batch.answers[i], {**batch.metas[i], **(extra or {})})
        if batch.turns[i] is not None:
            job.meta[_TURNS] = batch.turns[i]
        num_tokens, step = batch.num_tokens[i], int(batch.steps[i])
        job.meta.update(
            prompts=self._message(batch.prompts[i], "user"),
            prompt_id=batch.prompt_ids[i],
            data_source=batch.data_sources[i],
            num_tokens=None if math.isnan(num_tokens) else int(num_tokens),
            truncated=bool(batch.truncated[i]),
            step=None if step < 0 else step,
        )
        return job

    def check(self, job: Job) -> Verdict:
        return self.check_batch([job])[0]

    def check_batch(self, jobs: Sequence[Job]) -> list[Verdict]:
        """One call of the function for all ``jobs``; one verdict per job."""
        names = sorted({k for job in jobs for k in job.meta} - {_TURNS})
        columns = {k: [job.meta.get(k) for job in jobs] for k in names}
        values = type(self).function(completions=[self._completion(job) for job in jobs], **columns)
        if (
            values is None
            or isinstance(values, (str, bytes))
            or not hasattr(values, "__len__")
            or len(values) != len(jobs)
        ):
            got = (
                "None"
                if values is None
                else f"{len(values)} values"
                if hasattr(values, "__len__")
                else type(values).__name__
            )
            raise ValueError(
                f"{self.name} returned {got} for {len(jobs)} completions; "
                "a reward function returns one float or None each"
            )
        return [_verdict(v) for v in values]

    def _completion(self, job: Job) -> str | list[dict[str, str]]:
        """The completion as the function takes it: text, or its assistant messages (one when it was text)."""
        if self.options.completion_format == "standard":
            return job.prediction
        return [{"role": "assistant", "content": turn} for turn in job.meta.get(_TURNS) or [job.prediction]]

    def _message(self, text: str, role: str) -> str | list[dict[str, str]]:
        return text if self.options.completion_format == "standard" else [{"role": role, "content": text}]


def _verdict(value: Any) -> Verdict:
    if value is None or (isinstance(value, Real) and math.isnan(value)):
        return Verdict(float("nan"), BAD_REFERENCE, "the reward function returned None (it cannot judge this rollout)")
    if not isinstance(value, Real) or not math.isfinite(value):
        return Verdict(
            float("nan"), ERROR, f"the reward function returned {value!r}, not a finite number or None"[:500]
        )
    return Verdict(float(value), OK)


def _rebuild(function: RewardFunction, name: str, options: RewardFunctionOptions) -> RewardFunctionVerifier:
    return RewardFunctionVerifier.bind(function, name)(options)
