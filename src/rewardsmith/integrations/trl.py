"""TRL adapter: any rewardsmith spec as reward functions for ``trl.GRPOTrainer``.

    from rewardsmith.integrations.trl import reward_funcs
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

Group-aware shapers (kimi, laser_d, hapo, ...) need whole groups: TRL hands a reward function
the local process's slice, which holds whole groups when one process generates all
``num_generations`` completions of a prompt (the default single-process set-up; with several
processes, ``per_device_train_batch_size`` a multiple of ``num_generations``). Pass
``num_generations`` and every call is checked: a prompt whose rollouts do not come as a multiple
of it raises :class:`~rewardsmith.integrations.grouping.PartialGroupError`. Without it, a spec with
group-aware shapers still refuses calls whose groups have unequal sizes.

``per_component=True`` returns one function per component of the reward (see
:mod:`rewardsmith.pipeline`: ``rewardsmith_correctness``, ``rewardsmith_format`` in add mode, one
per shaper such as ``rewardsmith_kimi``, ``rewardsmith_gate`` with a gating format) so TRL logs
them apart. TRL sums reward functions with ``reward_weights`` (default 1 each) before normalising
(``multi_objective_aggregation="sum_then_normalize"``, the default); with those defaults the
functions sum exactly to the combined reward. The batch is scored once (the first function
called scores it, keyed by the call's prompts, completions, references and step; the others reuse
the result), so stateful shapers update once per step. ``asynchronous=True`` gives ``async``
functions for TRL's async reward path.

The spec's ``advantage`` is not used here: TRL computes advantages itself (``scale_rewards``).
TRL also calls reward functions on evaluation batches; stateful shapers then learn from those too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..pipeline import Pipeline, Scores, load_spec
from ..records import completion_text, prompt_text
from ..spec import Spec
from ..verifiers.base import BAD_REFERENCE, ERROR, JUDGE_FAILED, TIMEOUT
from .grouping import check_whole_groups, group_aware_shapers

TRAJECTORY_COLUMN = "completion_messages"  # a rollout_func's extra field: each completion's turns as messages
_TRL_KEYS = {"prompts", "completions", "completion_ids", "trainer_state", "log_metric", "log_extra", "environments"}
_UNKNOWN = (TIMEOUT, ERROR, BAD_REFERENCE, JUDGE_FAILED)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def trajectory(prompt: Any, completion: Any, turns: Any = None) -> list[dict[str, Any]] | None:
    """The messages of a multi-turn completion, after the prompt's; None for a single-turn one.

    Multi-turn: TRL's tool-calling loop (``GRPOTrainer(tools=...)`` / ``environment_factory``) hands a
    completion as a list of assistant and ``tool`` messages; a ``rollout_func`` may return the turns in
    a ``completion_messages`` field (``turns``) beside its token ids. A list holding only one assistant message
    is the single-turn conversational form and stays a completion."""
    if turns is None and not (
        isinstance(completion, list) and (len(completion) > 1 or any("tool_calls" in m for m in completion))
    ):
        return None
    head = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt_text(prompt)}]
    return [dict(m) for m in head] + [dict(m) for m in (turns if turns is not None else completion)]


class TRLScorer:
    """Turns TRL's reward-function calls into rewardsmith records and scores each batch once."""

    def __init__(
        self,
        pipeline: Pipeline,
        answer_column: str = "answer",
        eos_token_id: int | None = None,
        num_generations: int | None = None,
    ):
        if num_generations is not None and num_generations < 1:
            raise ValueError(f"num_generations must be >= 1, got {num_generations}")
        self.pipeline = pipeline
        self.answer_column = answer_column
        self.eos_token_id = eos_token_id
        self.num_generations = num_generations
        self._needs_groups = bool(group_aware_shapers(pipeline))
        self._lock = threading.Lock()
        self._last: tuple[str, Scores] | None = None
        pipeline.start_workers()  # while the trainer sets up: the first step does not wait for worker processes

    def records(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None,
        step: int | None,
        columns: dict[str, Any],
    ) -> list[dict[str, Any]]:
        n = len(completions)
        answers = columns.get(self.answer_column, columns.get("solution"))
        ids_column = columns.get("prompt_id")
        out = []
        turns = columns.get(TRAJECTORY_COLUMN)
        for i in range(n):
            prompt = prompt_text(prompts[i]) if prompts is not None else ""
            rec: dict[str, Any] = {
                "prompt_id": str(ids_column[i])
                if ids_column is not None
                else hashlib.sha1(prompt.encode()).hexdigest()[:16],
            }
            messages = trajectory(
                prompts[i] if prompts is not None else "", completions[i], turns[i] if turns is not None else None
            )
            if messages is not None:
                rec["messages"] = messages  # turn-level components read the turns; the rest the last assistant turn
            else:
                rec["prompt"] = prompt
                # conversational completions keep their messages: a format is scored per assistant turn
                rec["completion"] = (
                    completions[i] if isinstance(completions[i], list) else completion_text(completions[i])
                )
            if answers is not None and answers[i] is not None:
                rec["answer"] = answers[i]
            if completion_ids is not None:
                ids = list(completion_ids[i])
                if messages is None:  # a trajectory's ids hold tool results too: its length is its assistant turns'
                    rec["num_tokens"] = len(ids)
                if self.eos_token_id is not None:
                    rec["truncated"] = not ids or ids[-1] != self.eos_token_id
            if step is not None:
                rec["step"] = int(step)
            meta = {
                k: v[i]
                for k, v in columns.items()
                if k not in (self.answer_column, "prompt_id", TRAJECTORY_COLUMN)
                and isinstance(v, (list, tuple))
                and len(v) == n
                and _jsonable(v[i])
            }
            if completion_ids is not None:
                meta["token_ids"] = list(completion_ids[i])
            if meta:
                rec["meta"] = meta
            out.append(rec)
        self._check_groups(out)
        return out

    def _check_groups(self, records: list[dict[str, Any]]) -> None:
        check_whole_groups(
            [r["prompt_id"] for r in records],
            self.num_generations,
            self._needs_groups,
            "Generate each prompt's rollouts in one process (one process, or per_device_train_batch_size a "
            "multiple of num_generations), and pass reward_funcs(..., num_generations=G).",
        )

    def score(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        completion_ids: Sequence[Sequence[int]] | None = None,
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> Scores:
        """Scores for this TRL call, computed once per distinct batch."""
        step = getattr(trainer_state, "global_step", None)
        columns = {k: v for k, v in columns.items() if k not in _TRL_KEYS}
        answers = columns.get(self.answer_column, columns.get("solution"))
        key = hashlib.sha1(
            json.dumps(
                [prompts, completions, columns.get(TRAJECTORY_COLUMN), answers, step],
                default=str,
            ).encode()
        ).hexdigest()
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
            records = self.records(
                prompts if prompts is not None else [""] * len(completions), completions, completion_ids, step, columns
            )
            scores = self.pipeline.score(records, step=step)
            self._last = (key, scores)
        if log_metric is not None and len(scores):
            _log_component_means(scores, log_metric)
        return scores

    def values(self, scores: Scores, part: str | None) -> list[float | None]:
        data = scores.total if part is None else scores.components[part]
        return [None if status in _UNKNOWN else float(v) for v, status in zip(data, scores.status)]

    def __getstate__(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "answer_column": self.answer_column,
            "eos_token_id": self.eos_token_id,
            "num_generations": self.num_generations,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)


def _log_component_means(scores: Scores, log_metric: Callable[[str, float], None]) -> None:
    """Each stage's measured value's batch mean (unknown values left out) and the number of zero-variance groups."""
    for name, values in scores.values.items():
        finite = [v for v in values if not math.isnan(v)]
        if finite:
            log_metric(f"rewardsmith/{name}", float(sum(finite) / len(finite)))
    log_metric("rewardsmith/zero_variance_groups", float(scores.summary()["zero_variance_groups"]))


class RewardsmithReward:
    """A TRL reward function: the combined reward (``part=None``) or one stage's contribution."""

    def __init__(self, scorer: TRLScorer, part: str | None = None):
        self.scorer = scorer
        self.part = part
        self.__name__ = "rewardsmith" if part is None else f"rewardsmith_{part}"

    def __call__(self, **kwargs: Any) -> list[float | None]:
        return self.scorer.values(self.scorer.score(**kwargs), self.part)

    def __repr__(self) -> str:
        return f"<{self.__name__}: {self.scorer.pipeline!r}>"


class AsyncRewardsmithReward(RewardsmithReward):
    """The same, as an ``async`` function (scoring runs in a thread; the event loop stays free)."""

    async def __call__(self, **kwargs: Any) -> list[float | None]:  # type: ignore[override]
        return await asyncio.to_thread(super().__call__, **kwargs)


def reward_funcs(
    spec: str | dict[str, Any] | Spec | Pipeline,
    *,
    per_component: bool = False,
    answer_column: str = "answer",
    eos_token_id: int | None = None,
    num_generations: int | None = None,
    asynchronous: bool = False,
    processing_class: Any = None,
) -> list[RewardsmithReward]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)`` from a spec (path, dict, Spec or Pipeline).

    ``per_component``: one function per stage (summing to the combined reward) instead of one.
    ``answer_column``: the dataset column holding the reference (``solution`` when it is absent).
    ``eos_token_id``: completions whose ids do not end with it are ``truncated``; taken from
    ``processing_class.eos_token_id`` when only the tokenizer is given.
    ``num_generations``: the group size; every call is checked to hold whole groups.
    ``asynchronous``: ``async`` functions for TRL's async reward path.

    >>> (fn,) = reward_funcs({"verifier": "exact", "length_unit": "words"})
    >>> fn(prompts=["2+2?", "2+2?"], completions=["Answer: 4", "Answer: 5"], completion_ids=[[1], [2]], answer=["4", "4"])
    [1.0, 0.0]
    """
    if eos_token_id is None and processing_class is not None:
        eos_token_id = getattr(processing_class, "eos_token_id", None)
    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    scorer = TRLScorer(pipeline, answer_column, eos_token_id, num_generations)
    cls = AsyncRewardsmithReward if asynchronous else RewardsmithReward
    if not per_component:
        return [cls(scorer)]
    return [cls(scorer, name) for name in pipeline.component_names()]
