"""verl adapter: rewardsmith specs as verl reward functions and advantage estimators.

Reward function (verl 0.9 trainer config; the spec in ``$REWARDSMITH_SPEC``, read once per process)::

    reward.custom_reward_function.path=pkg://rewardsmith.integrations.verl
    reward.custom_reward_function.name=compute_score

(verl also loads this file by its path; the pre-0.7 keys ``custom_reward_function.path/name``
are migrated by verl.) ``compute_score`` has verl's per-sample signature. verl 0.9 computes
rewards one rollout at a time (its reward loop streams each finished rollout to a reward
worker), so a per-sample call cannot see a group, a training step or a consistent state:
specs with group-aware (kimi, laser_d, hapo, ...), stateful or step-scheduled shapers are refused
there with a message — unless ``REWARDSMITH_VERL_ADVANTAGE=1`` moves their shaping into verl's
advantage step, which holds whole groups once per step: ``compute_score`` then only verifies and
the ``rewardsmith_spec`` estimator shapes (:mod:`rewardsmith.integrations.verl_shaping`).
``compute_score_batch`` has the signature of the ``batch`` reward manager
(``verl.workers.reward_manager.batch``, the pre-reward-loop trainers): rollouts sharing
``extra_info["index"]`` form a group and every shaper runs. Both return
``{"score": reward, "acc": 0/1, <component>: value, ..., "correct_known", "timeout", "error"}``,
all finite and with the same keys for every rollout, so verl logs each of them.

Advantages: ``register_advantages()`` adds every rewardsmith estimator to verl's registry as
``rewardsmith_<name>`` (``algorithm.adv_estimator=rewardsmith_rloo``); the scalar reward of a rollout is
the sum of its token-level rewards, its length the number of response tokens and its group verl's
``uid``; ``rewardsmith_spec`` runs the whole spec after verification (above). Importing
:mod:`rewardsmith.integrations.verl_plugin` registers them, which verl does in each
of its processes when ``VERL_USE_EXTERNAL_MODULES=rewardsmith.integrations.verl_plugin`` is set.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

# Absolute imports: verl may load this file by its path, outside the package.
from rewardsmith.advantages.base import AdvantageContext
from rewardsmith.components import build, entries
from rewardsmith.integrations.grouping import per_sample_blockers
from rewardsmith.integrations.verl_shaping import (
    ADVANTAGE_ENV,
    CODE_BASE,
    CODE_END,
    ESTIMATOR,
    advantage_step_enabled,
    check_advantage_step,
    register_spec_advantage,
    verification_rows,
)
from rewardsmith.pipeline import Pipeline, Scores, load_spec
from rewardsmith.records import RecordError, validate_messages
from rewardsmith.verifiers.base import ERROR, TIMEOUT

SPEC_ENV = "REWARDSMITH_SPEC"


@lru_cache(maxsize=8)
def _pipeline_for(spec_path: str) -> Pipeline:
    return load_spec(spec_path)


def _env_pipeline() -> Pipeline:
    path = os.environ.get(SPEC_ENV)
    if not path:
        raise RuntimeError(
            f"set {SPEC_ENV}=/path/to/spec.yaml for rewardsmith's verl reward functions (or use make_compute_score)"
        )
    return _pipeline_for(path)


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else float(value)


def _as_dicts(scores: Scores) -> list[dict[str, float]]:
    """One dict per rollout; unknown values (NaN) become 0 with ``correct_known`` = 0 beside them."""
    out = []
    for i in range(len(scores)):
        row = {"score": _finite(scores.total[i]), "acc": _finite(scores.correct[i])}
        row.update({name: _finite(v[i]) for name, v in scores.values.items()})
        row["correct_known"] = float(not math.isnan(scores.correct[i]))
        row["timeout"] = float(scores.status[i] == TIMEOUT)
        row["error"] = float(scores.status[i] == ERROR)
        out.append(row)
    return out


def _records(
    data_sources: Sequence[Any] | None,
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None,
) -> list[dict[str, Any]]:
    records = []
    for i, text in enumerate(solution_strs):
        extra = (extra_infos[i] if extra_infos is not None else None) or {}
        index = extra.get("index")
        rec: dict[str, Any] = {
            "prompt_id": str(index) if index is not None else f"row{i}",
            "completion": text,
            "answer": ground_truths[i],
        }
        if data_sources is not None and data_sources[i] is not None:
            rec["data_source"] = str(data_sources[i])
        meta = {
            k: v
            for k, v in extra.items()
            if k not in ("rollout_reward_scores", "messages")
            and isinstance(v, (str, int, float, bool, list, dict, type(None)))
        }
        if extra.get("messages") is not None:  # a multi-turn agent loop's conversation (module docstring)
            try:
                rec["messages"] = agent_messages(extra["messages"])
                del rec["completion"]  # the last assistant turn
            except RecordError as exc:
                meta["trajectory_error"] = str(exc)[:500]  # scored as one completion, the reason kept
        if meta:
            rec["meta"] = meta
        records.append(rec)
    return records


def agent_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """A verl agent loop's conversation as trajectory messages: role, text content (a multimodal content list
    keeps its text parts), ``tool_calls``, ``tool_call_id`` and per-turn ``num_tokens``; RecordError when it
    is not one."""
    out = []
    for k, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RecordError(f"messages[{k}] is not an object")
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
        msg = {"role": m.get("role"), "content": "" if content is None else content}
        msg.update({key: m[key] for key in ("tool_calls", "tool_call_id", "num_tokens") if m.get(key) is not None})
        out.append(msg)
    validate_messages(out)
    return out


def score_batch(
    pipeline: Pipeline,
    data_sources: Sequence[Any] | None,
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
) -> list[dict[str, float]]:
    """verl's batch signature against an explicit pipeline."""
    return _as_dicts(pipeline.score(_records(data_sources, solution_strs, ground_truths, extra_infos)))


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """For verl's ``batch`` reward manager; the spec comes from ``$REWARDSMITH_SPEC``."""
    return score_batch(_env_pipeline(), data_sources, solution_strs, ground_truths, extra_infos)


def _refuse_per_sample(pipeline: Pipeline) -> None:
    names = per_sample_blockers(pipeline)
    if names:
        raise ValueError(
            f"verl's per-sample compute_score sees one rollout at a time, but shapers {names} need whole groups, "
            "a training step or one shared state. Run them in verl's advantage step, where verl holds whole "
            f"groups: set {ADVANTAGE_ENV}=1 (compute_score then only verifies), "
            "VERL_USE_EXTERNAL_MODULES=rewardsmith.integrations.verl_plugin and "
            f"algorithm.adv_estimator={ESTIMATOR}, with an `advantage:` in the spec (docs/integrations.md, verl). "
            "Or use verl's batch reward manager (compute_score_batch), TRL or `rewardsmith serve`"
        )


@lru_cache(maxsize=8)
def _checked_for_advantage_step(pipeline: Pipeline) -> Pipeline:
    check_advantage_step(pipeline)
    return pipeline


def _score_one(
    pipeline: Pipeline, advantage_step: bool, data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any
) -> dict[str, float]:
    records = _records([data_source], [solution_str], [ground_truth], [extra_info])
    if advantage_step:
        return verification_rows(_checked_for_advantage_step(pipeline), records)[0]
    _refuse_per_sample(pipeline)
    return _as_dicts(pipeline.score(records))[0]


def make_compute_score(spec: Any, advantage_step: bool | None = None) -> Callable[..., dict[str, float]]:
    """A per-sample ``compute_score`` bound to ``spec`` (for Python-side set-ups). With
    ``advantage_step`` (default: ``$REWARDSMITH_VERL_ADVANTAGE``) it returns verification codes
    for the ``rewardsmith_spec`` estimator (:mod:`rewardsmith.integrations.verl_shaping`)."""
    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    advantage_step = advantage_step_enabled() if advantage_step is None else advantage_step
    if advantage_step:
        _checked_for_advantage_step(pipeline)
    else:
        _refuse_per_sample(pipeline)

    def compute_score(
        data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any
    ) -> dict[str, float]:
        return _score_one(pipeline, advantage_step, data_source, solution_str, ground_truth, extra_info)

    return compute_score


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, float]:
    """verl's per-sample signature; the spec comes from ``$REWARDSMITH_SPEC``. With
    ``$REWARDSMITH_VERL_ADVANTAGE=1`` it only verifies and returns a verification code for the
    ``rewardsmith_spec`` advantage estimator, which shapes whole groups."""
    pipeline = _env_pipeline()
    return _score_one(pipeline, advantage_step_enabled(), data_source, solution_str, ground_truth, extra_info)


class VerlAdvantage:
    """A rewardsmith estimator behind verl's ``(token_level_rewards, response_mask, index)`` signature;
    returns (advantages, returns), both the scalar advantage broadcast over the response tokens."""

    def __init__(self, name: str):
        self.estimator = build("advantage", name, field="advantage")
        self.__name__ = f"rewardsmith_{name}"

    def __call__(
        self, token_level_rewards: Any, response_mask: Any, index: Any = None, config: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        import torch

        reward = token_level_rewards.sum(dim=-1).detach().cpu().double().numpy()
        if len(reward) and ((reward >= CODE_BASE) & (reward < CODE_END)).all():
            raise ValueError(
                f"{self.__name__}: the rewards are rewardsmith verification codes ({ADVANTAGE_ENV}=1); "
                f"use algorithm.adv_estimator={ESTIMATOR}"
            )
        length = response_mask.sum(dim=-1).detach().cpu().double().numpy()
        keys = list(index) if index is not None else list(range(len(reward)))
        ids: dict[Any, int] = {}
        group = np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)
        adv = self.estimator.compute(AdvantageContext(reward, group, len(ids), length, np.full(len(reward), np.nan)))  # type: ignore[attr-defined]
        scores = (
            torch.as_tensor(adv, dtype=token_level_rewards.dtype, device=token_level_rewards.device).unsqueeze(-1)
            * response_mask
        )
        return scores, scores


def register_advantages() -> list[str]:
    """Register every rewardsmith advantage estimator in verl's registry, and ``rewardsmith_spec`` (the
    spec's shaping and advantage over whole groups), idempotently; returns the names."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

    names = []
    for entry in entries("advantage"):
        name = f"rewardsmith_{entry.name}"
        if name not in ADV_ESTIMATOR_REGISTRY:
            register_adv_est(name)(VerlAdvantage(entry.name))
        names.append(name)
    return [*names, register_spec_advantage()]
