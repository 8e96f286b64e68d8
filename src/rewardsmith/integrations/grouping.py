"""What a spec needs from the way a framework hands rollouts over, and the checks the adapters run.

Group-aware shapers compare a rollout with the other rollouts of its prompt (Kimi's min/max
length, LASER-D's difficulty buckets, HAPO's shortest correct length, ...): they are only right
when every call holds each prompt's rollouts together. Stateful and step-scheduled shapers need
one call per training step. A framework that scores one rollout at a time (verl's per-sample
reward loop) can run neither.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..pipeline import Pipeline

# Shapers whose value for a rollout depends on the other rollouts of its group
# (tests/test_integrations_trl.py re-derives this set from the registry and fails on drift).
GROUP_AWARE_SHAPERS = frozenset({"kimi", "efficient_reasoning", "grpo_lambda", "hapo", "laser_d", "laser_de"})
# Shapers driven by the training step (a schedule), so a call per rollout would advance them per rollout.
STEP_SCHEDULED_SHAPERS = frozenset({"budget_curriculum"})


class PartialGroupError(ValueError):
    """A call held only part of some prompt's rollouts while the spec needs whole groups."""


def group_aware_shapers(pipeline: Pipeline) -> list[str]:
    return [key for key, shaper in pipeline.shapers if shaper.name in GROUP_AWARE_SHAPERS]


def per_sample_blockers(pipeline: Pipeline) -> list[str]:
    """Shapers that cannot run on one rollout at a time: group-aware, stateful or step-scheduled."""
    return [key for key, shaper in pipeline.shapers
            if shaper.name in GROUP_AWARE_SHAPERS or shaper.name in STEP_SCHEDULED_SHAPERS or type(shaper).stateful]


def check_whole_groups(prompt_ids: Sequence[str], group_size: int | None, needs_groups: bool, hint: str) -> None:
    """Raise :class:`PartialGroupError` when a call cannot hold whole groups.

    With ``group_size`` every prompt must come a multiple of ``group_size`` times (a prompt drawn
    twice into one batch forms one larger group). Without it, a spec with group-aware shapers
    needs all groups of one call to be the same size — a prompt split across calls (another
    process, another server shard) shows up as a smaller group.
    """
    counts = Counter(prompt_ids)
    if group_size is not None:
        partial = {pid: c for pid, c in counts.items() if c % group_size}
        if partial:
            pid, c = next(iter(partial.items()))
            raise PartialGroupError(
                f"rewardsmith needs whole groups: prompt {pid!r} arrived with {c} rollouts, not a multiple of the group size "
                f"{group_size} ({len(partial)} of {len(counts)} prompts partial). {hint}")
    elif needs_groups and len(set(counts.values())) > 1:
        sizes = sorted(set(counts.values()))
        raise PartialGroupError(
            f"rewardsmith needs whole groups for group-aware shapers, but this call holds groups of sizes {sizes}; "
            f"some prompt's rollouts were split. {hint}")
