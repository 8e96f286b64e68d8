"""What a spec needs from the way a framework hands rollouts over, and the checks the adapters run.

Group-aware shapers compare a rollout with the other rollouts of its prompt (Kimi's min/max
length, LASER-D's difficulty buckets, HAPO's shortest correct length, ...): they are only right
when every call holds each prompt's rollouts together. Stateful and step-scheduled shapers need
one call per training step. A framework that scores one rollout at a time (verl's per-sample
reward loop) can run neither. Each shaper says which it is through its capability tags
(``group_aware``, ``stateful``, ``step_scheduled``; see :mod:`rewardsmith.registry`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..pipeline import Pipeline


class PartialGroupError(ValueError):
    """A call held only part of some prompt's rollouts while the spec needs whole groups."""


def group_aware_shapers(pipeline: Pipeline) -> list[str]:
    """The spec's shapers tagged ``group_aware`` (their value depends on the rest of the group)."""
    return [key for key, shaper in pipeline.shapers if shaper.group_aware]


def per_sample_blockers(pipeline: Pipeline) -> list[str]:
    """Shapers that cannot run on one rollout at a time: tagged group-aware, stateful or step-scheduled."""
    return [key for key, shaper in pipeline.shapers if shaper.group_aware or shaper.stateful or shaper.step_scheduled]


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
                f"{group_size} ({len(partial)} of {len(counts)} prompts partial). {hint}"
            )
    elif needs_groups and len(set(counts.values())) > 1:
        sizes = sorted(set(counts.values()))
        raise PartialGroupError(
            f"rewardsmith needs whole groups for group-aware shapers, but this call holds groups of sizes {sizes}; "
            f"some prompt's rollouts were split. {hint}"
        )
