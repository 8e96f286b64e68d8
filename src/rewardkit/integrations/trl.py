"""TRL adapter: any rewardkit spec as reward functions for ``trl.GRPOTrainer``.

    from rewardkit.integrations.trl import reward_funcs
    trainer = GRPOTrainer(model=..., args=GRPOConfig(num_generations=8, ...), train_dataset=ds,
                          reward_funcs=reward_funcs("spec.yaml", num_generations=8))

TRL calls each function with keywords only: ``prompts``, ``completions`` (strings, or
conversational lists of messages), ``completion_ids``, every dataset column (one list each),
``trainer_state`` and ``log_metric``. The adapter turns that call into rollout records —
``answer`` from the dataset column ``answer_column`` (``solution`` as a fallback), ``num_tokens``
from ``completion_ids``, ``truncated`` when the ids do not end with ``eos_token_id``,
``prompt_id`` from a ``prompt_id`` column or else from the prompt text, ``step`` from
``trainer_state.global_step``, the ids in ``meta.token_ids`` and every other JSON-able column in
``meta`` — scores them with the
pipeline, and returns one float per completion (``None`` where correctness is unknown: a
timeout, a verifier error or an unusable reference; TRL then leaves that reward out).

Group-aware shapers and advantages need whole groups: TRL hands a reward function the local
process's slice, which holds whole groups when one process generates ``num_generations``
completions per prompt (the default single-process set-up). Pass ``num_generations`` and every
call is checked: a prompt whose rollouts do not come as a multiple of it raises a ValueError.

``per_component=True`` returns one function per stage — ``rewardkit_base`` (correctness and
format) and one per shaper (``rewardkit_kimi``, ...) — so TRL logs them apart; with TRL's
default weights of 1 they sum exactly to the combined reward. The batch is scored once (the
first function called scores it, the others reuse the result), so stateful shapers update
once per step. ``asynchronous=True`` gives ``async`` functions for TRL's async reward path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from typing import Any, Callable, Sequence

from ..pipeline import Pipeline, Scores
from ..records import completion_text
from ..spec import Spec, load_spec
from ..verifiers.base import BAD_REFERENCE, ERROR, TIMEOUT

_TRL_KEYS = {"prompts", "completions", "completion_ids", "trainer_state", "log_metric", "log_extra"}
_UNKNOWN = (TIMEOUT, ERROR, BAD_REFERENCE)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return str(prompt)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


class TRLScorer:
    """Turns TRL's reward-function calls into rewardkit records and scores each batch once."""

    def __init__(self, pipeline: Pipeline, answer_column: str = "answer", eos_token_id: int | None = None, num_generations: int | None = None):
        if num_generations is not None and num_generations < 1:
            raise ValueError(f"num_generations must be >= 1, got {num_generations}")
        self.pipeline = pipeline
        self.answer_column = answer_column
        self.eos_token_id = eos_token_id
        self.num_generations = num_generations
        self._lock = threading.Lock()
        self._last: tuple[str, Scores] | None = None

    def records(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None, step: int | None, columns: dict[str, Any]) -> list[dict[str, Any]]:
        n = len(completions)
        answers = columns.get(self.answer_column, columns.get("solution"))
        ids_column = columns.get("prompt_id")
        out = []
        for i in range(n):
            prompt = _prompt_text(prompts[i]) if prompts is not None else ""
            rec: dict[str, Any] = {
                "prompt_id": str(ids_column[i]) if ids_column is not None else hashlib.sha1(prompt.encode()).hexdigest()[:16],
                "prompt": prompt,
                "completion": completion_text(completions[i]),
            }
            if answers is not None and answers[i] is not None:
                rec["answer"] = answers[i]
            if completion_ids is not None:
                ids = list(completion_ids[i])
                rec["num_tokens"] = len(ids)
                if self.eos_token_id is not None:
                    rec["truncated"] = not ids or ids[-1] != self.eos_token_id
            if step is not None:
                rec["step"] = int(step)
            meta = {k: v[i] for k, v in columns.items() if k not in (self.answer_column, "prompt_id") and isinstance(v, (list, tuple)) and len(v) == n and _jsonable(v[i])}
            if completion_ids is not None:
                meta["token_ids"] = list(completion_ids[i])
            if meta:
                rec["meta"] = meta
            out.append(rec)
        self._check_groups(out)
        return out

    def _check_groups(self, records: list[dict[str, Any]]) -> None:
        if self.num_generations is None:
            return
        counts: dict[str, int] = {}
        for r in records:
            counts[r["prompt_id"]] = counts.get(r["prompt_id"], 0) + 1
        partial = {k: c for k, c in counts.items() if c % self.num_generations}
        if partial:
            pid, c = next(iter(partial.items()))
            raise ValueError(
                f"rewardkit needs whole groups: prompt {pid!r} arrived with {c} rollouts, not a multiple of "
                f"num_generations={self.num_generations} ({len(partial)} partial groups). Group-aware shapers and "
                "advantages would see a wrong group; generate each prompt's rollouts in one process "
                "(e.g. one process, or per_device_train_batch_size a multiple of num_generations)."
            )

    def score(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), completion_ids: Sequence[Sequence[int]] | None = None,
              trainer_state: Any = None, log_metric: Callable[[str, float], None] | None = None, **columns: Any) -> Scores:
        """Scores for this TRL call, computed once per distinct batch."""
        step = getattr(trainer_state, "global_step", None)
        columns = {k: v for k, v in columns.items() if k not in _TRL_KEYS}
        key = hashlib.sha1(json.dumps([[_prompt_text(p) for p in (prompts or [])], [completion_text(c) for c in completions], step], default=str).encode()).hexdigest()
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
            records = self.records(prompts if prompts is not None else [""] * len(completions), completions, completion_ids, step, columns)
            scores = self.pipeline.score(records, step=step)
            self._last = (key, scores)
        if log_metric is not None and len(scores):
            for name, values in scores.components.items():
                finite = [v for v in values if not math.isnan(v)]
                if finite:
                    log_metric(f"rewardkit/{name}", float(sum(finite) / len(finite)))
            log_metric("rewardkit/zero_variance_groups", float(scores.summary()["zero_variance_groups"]))
        return scores

    def values(self, scores: Scores, part: str | None) -> list[float | None]:
        data = scores.total if part is None else scores.contributions[part]
        return [None if status in _UNKNOWN else float(v) for v, status in zip(data, scores.status)]

    def __getstate__(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "answer_column": self.answer_column, "eos_token_id": self.eos_token_id, "num_generations": self.num_generations}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)


class RewardkitReward:
    """A TRL reward function: the combined reward (``part=None``) or one stage's contribution."""

    def __init__(self, scorer: TRLScorer, part: str | None = None):
        self.scorer = scorer
        self.part = part
        self.__name__ = "rewardkit" if part is None else f"rewardkit_{part}"

    def __call__(self, **kwargs: Any) -> list[float | None]:
        return self.scorer.values(self.scorer.score(**kwargs), self.part)

    def __repr__(self) -> str:
        return f"<{self.__name__}: {self.scorer.pipeline!r}>"


class AsyncRewardkitReward(RewardkitReward):
    """The same, as an ``async`` function (scoring runs in a thread; the event loop stays free)."""

    async def __call__(self, **kwargs: Any) -> list[float | None]:  # type: ignore[override]
        return await asyncio.to_thread(super().__call__, **kwargs)


def reward_funcs(spec: "str | dict[str, Any] | Spec | Pipeline", *, per_component: bool = False, answer_column: str = "answer",
                 eos_token_id: int | None = None, num_generations: int | None = None, asynchronous: bool = False) -> list[RewardkitReward]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)`` from a spec (path, dict, Spec or Pipeline).

    ``per_component``: one function per stage (summing to the combined reward) instead of one.
    ``eos_token_id``: marks completions whose ids do not end with it as ``truncated``.
    ``num_generations``: checks that every call holds whole groups.
    """
    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    scorer = TRLScorer(pipeline, answer_column, eos_token_id, num_generations)
    cls = AsyncRewardkitReward if asynchronous else RewardkitReward
    if not per_component:
        return [cls(scorer)]
    return [cls(scorer, "base"), *(cls(scorer, key) for key, _ in pipeline.shapers)]
