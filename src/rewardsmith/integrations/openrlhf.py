"""OpenRLHF's reward protocol: ``(queries, prompts, labels)`` → ``{"rewards", "scores", "extra_logs"}``.

Used by the HTTP server (``rewardsmith serve``, ``--remote_rm_url http://host:port/get_reward``) and
usable as OpenRLHF's Python-file reward (``--remote_rm_url /path/to/rewardsmith/integrations/openrlhf.py``,
the spec in ``$REWARDSMITH_SPEC``), which calls :func:`reward_func`.

- A query is the prompt followed by the response; the completion is the query minus its prompt.
  Rollouts sharing a prompt form a group.
- ``rewards``: the spec's reward (what the advantage is computed from). An unknown model judgement
  (status ``judge_failed``: the judge or reward model failed) is ``null`` over HTTP, never a silent 0,
  so a rewardsmith ``reward_model`` client of this server reads it back as unknown. OpenRLHF itself
  needs floats: its HTTP client refuses ``null`` (a loud failure rather than training on a made-up
  0); its Python-file reward (:func:`reward_func`, tensors) gets 0 there, flagged ``judge_failed`` = 1.
- ``scores``: correctness in [0, 1] (unknown counts as 0) when the spec has a verifier — OpenRLHF
  filters groups on it (dynamic filtering) — else the reward.
- ``extra_logs``: one list per component plus ``correct_known``, ``timeout``, ``error`` and ``judge_failed``: the same
  keys in every answer (OpenRLHF merges answers by the first one's keys) and finite numbers only
  (NaN, i.e. unknown, becomes 0 with ``correct_known`` = 0 beside it).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Absolute imports: OpenRLHF loads this file by its path, outside the package.
from rewardsmith.integrations.grouping import PartialGroupError, check_whole_groups, group_aware_shapers
from rewardsmith.pipeline import Pipeline, Scores, load_spec
from rewardsmith.verifiers.base import ERROR, JUDGE_FAILED, TIMEOUT

SPEC_ENV = "REWARDSMITH_SPEC"


def response_text(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query (prompt + response)."""
    return query[len(prompt) :] if prompt and query.startswith(prompt) else query


def to_records(
    queries: Sequence[str],
    prompts: Sequence[str] | None,
    labels: Sequence[Any] | None,
    group_ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Rollout records; ``prompt_id`` (the group) is the client's group id where given, else the prompt's hash."""
    n = len(queries)
    prompts = prompts if prompts is not None else [""] * n
    labels = labels if labels is not None else [None] * n
    if len(prompts) != n or len(labels) != n:
        raise ValueError(f"'prompts' has {len(prompts)} items and 'labels' {len(labels)}, but 'query' has {n}")
    ids = group_ids if group_ids is not None else [hashlib.sha1(p.encode()).hexdigest()[:16] for p in prompts]
    return [
        {"prompt_id": i, "prompt": p, "completion": response_text(q, p), "answer": a}
        for q, p, a, i in zip(queries, prompts, labels, ids)
    ]


def check_groups(pipeline: Pipeline, records: list[dict[str, Any]], group_size: int | None) -> None:
    check_whole_groups(
        [r["prompt_id"] for r in records],
        group_size,
        bool(group_aware_shapers(pipeline)),
        "Send all rollouts of a prompt in one request (one server URL, or a rollout batch that divides evenly "
        "into whole groups per URL).",
    )


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else float(value)


def to_response(pipeline: Pipeline, scores: Scores) -> dict[str, Any]:
    rewards = [None if math.isnan(v) else float(v) for v in scores.total]  # an unknown judgement: null
    known = [not math.isnan(c) for c in scores.correct]
    logs = {name: [_finite(v) for v in scores.values.get(name, [])] for name in component_names(pipeline)}
    logs["correct_known"] = [float(k) for k in known]
    logs["timeout"] = [float(s == TIMEOUT) for s in scores.status]
    logs["error"] = [float(s == ERROR) for s in scores.status]
    logs["judge_failed"] = [float(s == JUDGE_FAILED) for s in scores.status]
    correct = [_finite(c) for c in scores.correct]
    return {"rewards": rewards, "scores": correct if pipeline.verifiers else rewards, "extra_logs": logs}


def response_rows(response: dict[str, Any]) -> list[dict[str, Any]]:
    """One answer per rollout, each shaped like a one-rollout request's (lists of one)."""
    logs = response["extra_logs"]
    return [
        {"rewards": [r], "scores": [s], "extra_logs": {k: [v[i]] for k, v in logs.items()}}
        for i, (r, s) in enumerate(zip(response["rewards"], response["scores"]))
    ]


def component_names(pipeline: Pipeline) -> list[str]:
    """The components every scored batch of ``pipeline`` carries, in order."""
    names = ["correctness"] if pipeline.verifiers else []
    if pipeline.format is not None:
        names.append("format")
    return names + [key for key, _ in pipeline.shapers]


def score_openrlhf(
    pipeline: Pipeline,
    queries: Sequence[str],
    prompts: Sequence[str] | None,
    labels: Sequence[Any] | None,
    group_size: int | None = None,
) -> dict[str, Any]:
    """Score one OpenRLHF request; lists in, lists out."""
    records = to_records(queries, prompts, labels)
    check_groups(pipeline, records, group_size)
    if records and group_aware_shapers(pipeline) and len({r["prompt_id"] for r in records}) == len(records):
        raise PartialGroupError(
            f"every prompt of this call has one rollout, so the spec's group-aware shapers "
            f"({', '.join(group_aware_shapers(pipeline))}) would change nothing: OpenRLHF's current client calls "
            "a Python-file reward one rollout at a time. Use `rewardsmith serve --num-generations N` (it waits for "
            "whole groups) and --remote_rm_url http://HOST:PORT/get_reward."
        )
    return to_response(pipeline, pipeline.score(records))


@lru_cache(maxsize=4)
def _env_pipeline(path: str) -> Pipeline:
    return load_spec(path)


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """OpenRLHF's Python-file reward: the same answer as ``/get_reward``, as tensors (an unknown
    judgement's reward, ``null`` there, is 0 here with ``extra_logs.judge_failed`` = 1: tensors hold floats)."""
    import torch

    path = os.environ.get(SPEC_ENV)
    if not path:
        raise RuntimeError(f"set {SPEC_ENV}=/path/to/spec.yaml for rewardsmith's OpenRLHF reward_func")
    out = score_openrlhf(_env_pipeline(path), queries, prompts, labels)
    return {
        "rewards": torch.tensor([0.0 if r is None else r for r in out["rewards"]]),
        "scores": torch.tensor(out["scores"]),
        "extra_logs": {k: torch.tensor(v) for k, v in out["extra_logs"].items()},
    }
