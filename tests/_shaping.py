"""Helpers for the shaper tests: a ShapingContext from plain lists, and scoring records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardsmith import Batch
from rewardsmith.components import build
from rewardsmith.shaping import BaseValues, ShapingContext

NAN = math.nan


def make_ctx(
    lengths: Sequence[float],
    correct: Sequence[float | None],
    groups: Sequence[str] | None = None,
    *,
    base_values: BaseValues = BaseValues(),
    reward: Sequence[float] | None = None,
    answered: Sequence[bool] | None = None,
    format_ok: Sequence[bool] | None = None,
    truncated: Sequence[bool] | None = None,
    completions: Sequence[str] | None = None,
    metas: Sequence[dict[str, Any]] | None = None,
    step: int = 0,
    state: dict[str, Any] | None = None,
) -> ShapingContext:
    """A context as the pipeline builds it: base from ``base_values`` (unknown correctness scores
    as wrong, unanswered as no_answer), reward = base unless given."""
    n = len(lengths)
    groups = list(groups) if groups is not None else ["q"] * n
    records = [
        {
            "prompt_id": groups[i],
            "completion": completions[i] if completions else "x",
            "num_tokens": lengths[i],
            "truncated": bool(truncated[i]) if truncated else False,
            "meta": dict(metas[i]) if metas else {},
        }
        for i in range(n)
    ]
    batch = Batch.from_records(records)
    corr = np.array([NAN if c is None else float(c) for c in correct], dtype=np.float64)
    ans = np.ones(n, dtype=bool) if answered is None else np.array(answered, dtype=bool)
    base = np.where(~ans, base_values.no_answer, np.where(corr == 1.0, base_values.correct, base_values.wrong))
    rew = base.copy() if reward is None else np.array(reward, dtype=np.float64)
    fmt = np.ones(n, dtype=bool) if format_ok is None else np.array(format_ok, dtype=bool)
    length = np.array(lengths, dtype=np.float64)
    return ShapingContext(
        batch, rew, base, corr, length, "tokens", ans, fmt, step, base_values, {} if state is None else state
    )


def shaper(name: str, **options: Any):
    return build("shaper", {"name": name, **options}, field="test")


def run(name: str, ctx: ShapingContext, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """(new_reward, component) of shaper ``name`` on ``ctx``; asserts both are NaN-free."""
    new, comp = shaper(name, **options).apply(ctx)
    assert not np.isnan(new).any() and not np.isnan(comp).any(), (new, comp)
    assert len(new) == len(comp) == len(ctx.length)
    return np.asarray(new), np.asarray(comp)


def recs(rows: Sequence[tuple[str, str, str | None]], **extra: Any) -> list[dict[str, Any]]:
    """Records from (prompt_id, completion, answer) triples."""
    return [{"prompt_id": p, "completion": c, "answer": a, **extra} for p, c, a in rows]


def random_batches(
    n_batches: int, n_groups: int = 4, size: int = 4, seed: int = 0, prompts: int = 6, max_tokens: int = 400
) -> list[list[dict[str, Any]]]:
    """Batches of ``n_groups`` groups (drawn from ``prompts`` prompt ids, so prompts recur) with
    random correctness and token counts; no ``step`` field (the pipeline counts steps)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        batch = []
        for p in rng.choice(prompts, size=n_groups, replace=False):
            for _ in range(size):
                ok = rng.random() < 0.5
                batch.append(
                    {
                        "prompt_id": f"p{p}",
                        "completion": f"Answer: {4 if ok else 5}",
                        "answer": "4",
                        "num_tokens": int(rng.integers(1, max_tokens)),
                    }
                )
        out.append(batch)
    return out


def assert_resume_matches(
    spec: dict[str, Any], batches: list[list[dict[str, Any]]], split: int, tmp_path
) -> dict[str, Any]:
    """Scoring all batches in one pipeline equals scoring ``batches[:split]``, saving the state,
    and scoring the rest in a new pipeline built from the same spec. Returns the final state."""
    import json

    from rewardsmith import load_spec

    whole = load_spec({**spec, "state": str(tmp_path / "whole.json")})
    expected = [whole.score(b).total for b in batches]
    first = load_spec({**spec, "state": str(tmp_path / "split.json")})
    got = [first.score(b).total for b in batches[:split]]
    second = load_spec({**spec, "state": str(tmp_path / "split.json")})
    got += [second.score(b).total for b in batches[split:]]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    a = json.loads((tmp_path / "whole.json").read_text())
    b = json.loads((tmp_path / "split.json").read_text())
    assert a == b
    return a
