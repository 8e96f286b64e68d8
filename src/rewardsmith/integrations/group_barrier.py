"""The group barrier of ``rewardsmith serve``: rollouts sent one per request are scored as whole groups.

OpenRLHF's ``SingleTurnAgentExecutor`` (and verl's async reward loop, and most HTTP clients) send
each rollout in its own ``/get_reward`` request, all at once. A group-aware shaper (Kimi's min/max
length, LASER-D's difficulty buckets, HAPO's shortest correct length) scored on one rollout sees a
group of one and does nothing. The barrier holds each such request until ``group_size`` rollouts
with its group key (the records' ``prompt_id``: the prompt text's hash, or the client's group id)
have arrived, scores them in one call, and answers each request with its own row.

- A group closes at ``group_size``: a prompt drawn twice into one batch (2·n rollouts) forms two
  groups, in order of arrival; in one scoring call they are one group of 2·n, as everywhere in
  rewardsmith (same ``prompt_id``).
- ``groups_per_call``: complete groups are held until this many (of one ``step``) are ready and
  scored together — one call, one step for stateful shapers, as ``rewardsmith score`` on the batch.
- Every group is bounded by ``timeout_s`` from its first rollout: a group that has not completed
  by then (a rollout lost, a client gone) is scored as what arrived, with a warning and a count in
  :attr:`GroupBarrier.counters`; held complete groups are scored then too.
- A client that disconnects while its group waits gives its place back (OpenRLHF retries a request
  its client timed out, and the retry takes the place again); once scoring has started it cannot.
- :meth:`GroupBarrier.close` (server shutdown) scores every waiting group as what arrived and
  refuses requests that come later (:class:`BarrierClosed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("uvicorn.error")  # where `rewardsmith serve` logs (its --log-level)

ScoreRows = Callable[[list[dict[str, Any]], "int | None"], Awaitable[list[Any]]]


class BarrierClosed(RuntimeError):
    """The server is shutting down: no new rollout may wait for a group."""


class ClientGone(RuntimeError):
    """The client disconnected before its group was scored; its place was given back."""


@dataclass(eq=False)
class _Group:
    key: tuple[int | None, str]  # (step, prompt_id)
    slots: list[tuple[dict[str, Any], asyncio.Future]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    state: str = "open"  # open → ready (complete, held for groups_per_call) → scoring


class GroupBarrier:
    """Holds one-rollout requests until their group is complete; ``score_rows(records, step)`` scores
    a call and returns one answer per record."""

    def __init__(self, score_rows: ScoreRows, group_size: int, timeout_s: float, groups_per_call: int = 1):
        if group_size < 1 or groups_per_call < 1 or not timeout_s > 0:
            raise ValueError("group_size and groups_per_call must be at least 1 and timeout_s positive")
        self.score_rows = score_rows
        self.group_size = group_size
        self.timeout_s = timeout_s
        self.groups_per_call = groups_per_call
        self._open: dict[tuple[int | None, str], list[_Group]] = {}  # oldest first
        self._ready: dict[int | None, list[_Group]] = {}
        self._scoring: set[asyncio.Task] = set()
        self.closed = False
        self.counters = {"groups_scored": 0, "partial_groups": 0, "short_calls": 0, "released": 0}

    def metrics(self) -> dict[str, Any]:
        """What /healthz shows: settings, counters and what is waiting now."""
        waiting = [g for groups in (*self._open.values(), *self._ready.values()) for g in groups]
        return {
            "group_size": self.group_size,
            "groups_per_call": self.groups_per_call,
            "timeout_s": self.timeout_s,
            "waiting_rollouts": sum(len(g.slots) for g in waiting),
            "waiting_groups": len(waiting),
            **self.counters,
        }

    async def submit(self, record: dict[str, Any], step: int | None, disconnected: Callable[[], Awaitable[Any]]) -> Any:
        """Wait for ``record``'s group and return its answer; ``disconnected()`` returns when the client
        has gone, which gives the place back (:class:`ClientGone`). Raises what scoring raised, or
        :class:`BarrierClosed`."""
        if self.closed:
            raise BarrierClosed("the server is shutting down")
        loop = asyncio.get_running_loop()
        key = (step, str(record["prompt_id"]))
        groups = self._open.setdefault(key, [])
        if not groups:
            groups.append(_Group(key, timer=None))
            groups[0].timer = loop.call_later(self.timeout_s, self._expire, groups[0])
        group = groups[0]
        future = loop.create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # an answer nobody waits for any more
        group.slots.append((record, future))
        if len(group.slots) == self.group_size:
            self._close_open(group)
            self._hold(group)
        gone = asyncio.ensure_future(disconnected())
        gone.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.wait({future, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not future.done():  # the client left (or this handler was cancelled) before scoring began
                self._release(group, future)
        if not future.done() or future.cancelled():  # gone while waiting, or while its group was scored
            raise ClientGone("the client disconnected while its group waited")
        return future.result()

    def _close_open(self, group: _Group) -> None:
        groups = self._open[group.key]
        groups.remove(group)
        if not groups:
            del self._open[group.key]

    def _release(self, group: _Group, future: asyncio.Future) -> None:
        if group.state == "scoring":
            return
        self.counters["released"] += 1
        group.slots = [(r, f) for r, f in group.slots if f is not future]
        future.cancel()
        if group.state == "ready":  # it was complete: open again, first in line, for the retry to complete
            self._ready[group.key[0]].remove(group)
            group.state = "open"
            self._open.setdefault(group.key, []).insert(0, group)
        if not group.slots:
            self._close_open(group)
            group.timer.cancel()

    def _hold(self, group: _Group) -> None:
        """``group`` is complete (or out of time): score its step's held groups once there are enough."""
        group.state = "ready"
        ready = self._ready.setdefault(group.key[0], [])
        ready.append(group)
        if len(ready) >= self.groups_per_call or self.closed:
            self._flush(group.key[0])

    def _expire(self, group: _Group, when: str = "") -> None:
        """``group``'s time is up (or the server stops): score it as what arrived, with the groups held beside it."""
        step, prompt_id = group.key
        if group.state == "open":
            self._close_open(group)
            self.counters["partial_groups"] += 1
            log.warning(
                "group barrier: prompt %s (step %s) had %d of %d rollouts %s; scored as they are",
                prompt_id,
                "auto" if step is None else step,
                len(group.slots),
                self.group_size,
                when or f"after {self.timeout_s:g}s",
            )
            self._hold(group)
        if group.state == "ready":
            self._flush(step)

    def _flush(self, step: int | None) -> None:
        groups = self._ready.pop(step, [])
        if not groups:
            return
        if len(groups) < self.groups_per_call:
            self.counters["short_calls"] += 1
        for g in groups:
            g.state = "scoring"
            g.timer.cancel()
        self.counters["groups_scored"] += len(groups)
        task = asyncio.ensure_future(self._score([slot for g in groups for slot in g.slots], step))
        self._scoring.add(task)
        task.add_done_callback(self._scoring.discard)

    async def _score(self, slots: list[tuple[dict[str, Any], asyncio.Future]], step: int | None) -> None:
        try:
            rows = await self.score_rows([record for record, _ in slots], step)
        except Exception as exc:  # every waiting request gets the failure (a 422 is a 422 for all)
            for _, future in slots:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled: nobody gets an answer
            for _, future in slots:
                future.cancel()
            raise
        for (_, future), row in zip(slots, rows):
            if not future.done():
                future.set_result(row)

    async def close(self) -> None:
        """Score every waiting group as what arrived (a partial one with its warning) and wait for the
        scoring in flight; later requests get :class:`BarrierClosed`."""
        self.closed = True
        for group in [g for groups in self._open.values() for g in groups]:
            self._expire(group, "at shutdown")
        for step in list(self._ready):
            self._flush(step)
        while self._scoring:
            await asyncio.gather(*self._scoring, return_exceptions=True)
