"""verl adapter: rewardkit specs as verl reward functions and advantage estimators.

Reward (trainer config)::

    custom_reward_function.path=/path/to/site-packages/rewardkit/integrations/verl.py
    custom_reward_function.name=compute_score_batch      # with reward_model.reward_manager=batch
    # the spec: environment variable REWARDKIT_SPEC=/path/spec.yaml (read once per process)

``compute_score`` is verl's per-sample signature (``naive`` manager); it sees one rollout at a
time, so group-aware shapers (kimi, laser_d, grpo_lambda, ...) are refused there — use
``compute_score_batch`` with the ``batch`` manager, where rollouts sharing
``extra_info["index"]`` (verl's data preprocessing stores the dataset row there) form a group.
Both return ``{"score": reward, <component>: value, ...}`` with the same keys for every
rollout, so verl logs each component.

Advantages: ``register_advantages()`` adds every rewardkit estimator to verl's registry as
``rewardkit_<name>`` (``algorithm.adv_estimator=rewardkit_grpo``); the scalar reward of a
rollout is the sum of its token-level rewards and its length the number of response tokens.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..pipeline import Pipeline, Scores
from ..registry import entries
from ..spec import load_spec

SPEC_ENV = "REWARDKIT_SPEC"
GROUP_AWARE = {"kimi", "laser_d", "laser_de", "grpo_lambda", "efficient_reasoning", "hapo"}


@lru_cache(maxsize=8)
def _pipeline_for(spec_path: str) -> Pipeline:
    return load_spec(spec_path)


def _env_pipeline() -> Pipeline:
    path = os.environ.get(SPEC_ENV)
    if not path:
        raise RuntimeError(f"set {SPEC_ENV}=/path/to/spec.yaml for rewardkit's verl reward functions (or use make_compute_score)")
    return _pipeline_for(path)


def _as_dicts(scores: Scores) -> list[dict[str, float]]:
    out = []
    for i in range(len(scores)):
        row = {"score": float(scores.total[i]), "acc": float(scores.correct[i]) if not math.isnan(scores.correct[i]) else float("nan")}
        row.update({name: float(v[i]) for name, v in scores.components.items() if name not in ("timeout", "error")})
        row["timeout"] = float(scores.status[i] == "timeout")
        row["error"] = float(scores.status[i] == "error")
        out.append(row)
    return out


def _records(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None) -> list[dict[str, Any]]:
    records = []
    for i, text in enumerate(solution_strs):
        extra = (extra_infos[i] if extra_infos is not None else None) or {}
        index = extra.get("index")
        rec: dict[str, Any] = {"prompt_id": str(index) if index is not None else f"row{i}", "completion": text, "answer": ground_truths[i]}
        if data_sources is not None and data_sources[i] is not None:
            rec["data_source"] = str(data_sources[i])
        meta = {k: v for k, v in extra.items() if k != "rollout_reward_scores" and isinstance(v, (str, int, float, bool, list, dict, type(None)))}
        if meta:
            rec["meta"] = meta
        records.append(rec)
    return records


def score_batch(pipeline: Pipeline, data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None = None) -> list[dict[str, float]]:
    """verl's batch signature against an explicit pipeline."""
    return _as_dicts(pipeline.score(_records(data_sources, solution_strs, ground_truths, extra_infos)))


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None = None, **kwargs: Any) -> list[dict[str, float]]:
    """For ``reward_model.reward_manager=batch``; the spec comes from ``$REWARDKIT_SPEC``."""
    return score_batch(_env_pipeline(), data_sources, solution_strs, ground_truths, extra_infos)


def make_compute_score(spec: Any) -> Any:
    """A per-sample ``compute_score`` bound to ``spec`` (for Python-side set-ups)."""
    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    _refuse_group_aware(pipeline)

    def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any) -> dict[str, float]:
        return score_batch(pipeline, [data_source], [solution_str], [ground_truth], [extra_info])[0]

    return compute_score


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any) -> dict[str, float]:
    """verl's per-sample signature; the spec comes from ``$REWARDKIT_SPEC``."""
    pipeline = _env_pipeline()
    _refuse_group_aware(pipeline)
    return score_batch(pipeline, [data_source], [solution_str], [ground_truth], [extra_info])[0]


def _refuse_group_aware(pipeline: Pipeline) -> None:
    names = [s.name for _, s in pipeline.shapers if s.name in GROUP_AWARE]
    if names:
        raise ValueError(f"per-sample compute_score sees one rollout at a time, but {names} need whole groups; "
                         "use compute_score_batch with reward_model.reward_manager=batch")


def _verl_estimator(name: str) -> Any:
    from ..registry import build

    estimator = build("advantage", name, field="advantage")

    def compute(token_level_rewards: Any, response_mask: Any, index: Any = None, config: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        import torch

        from ..advantages.base import AdvantageContext

        reward = token_level_rewards.sum(dim=-1).detach().cpu().double().numpy()
        length = response_mask.sum(dim=-1).detach().cpu().double().numpy()
        keys = list(index) if index is not None else list(range(len(reward)))
        ids: dict[Any, int] = {}
        group = np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)
        adv = estimator.compute(AdvantageContext(reward, group, len(ids), length, np.full(len(reward), np.nan)))  # type: ignore[attr-defined]
        scores = torch.as_tensor(adv, dtype=token_level_rewards.dtype, device=token_level_rewards.device).unsqueeze(-1) * response_mask
        return scores, scores

    compute.__name__ = f"rewardkit_{name}"
    return compute


def register_advantages() -> list[str]:
    """Register every rewardkit advantage estimator in verl's registry; returns the names."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

    names = []
    for entry in entries("advantage"):
        name = f"rewardkit_{entry.name}"
        if name not in ADV_ESTIMATOR_REGISTRY:
            register_adv_est(name)(_verl_estimator(entry.name))
        names.append(name)
    return names
