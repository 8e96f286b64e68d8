"""HTTP reward server speaking OpenRLHF's remote reward protocol (``rewardsmith serve``).

Routes:

- ``POST /get_reward`` — OpenRLHF: ``{"query": [...], "prompts": [...], "labels": [...]}``
  (query = prompt + response) → ``{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}``
  (see :mod:`rewardsmith.integrations.openrlhf` for what each holds). Rollouts sharing a prompt (or
  a ``group_ids`` entry) form a group; with ``group_size`` (``--num-generations``) a request holding
  several rollouts but part of a group gets 422. A request of one rollout, as OpenRLHF's client
  sends them, waits in the group barrier (:mod:`rewardsmith.integrations.group_barrier`) when the
  spec has group-aware, stateful or step-scheduled shapers; a group-aware spec without
  ``group_size`` is refused at start-up.
- ``POST /score`` — rollout records (``{"records": [...]}``, the schema in docs/architecture.md) → the records
  with ``reward``/``correct``/``components`` added, plus the summary.
- ``POST /verify`` — NeMo Gym's resources-server protocol: a ``BaseVerifyRequest`` (one rollout as a
  Responses-API trajectory) → a ``BaseVerifyResponse`` (see :mod:`rewardsmith.integrations.nemo_gym`).
- ``GET /healthz`` — liveness, the pipeline's step and the group barrier's counters; no token needed.

Every POST passes :class:`Guard` first: with a token configured, ``Authorization: Bearer <token>``
is checked (constant-time) *before* a byte of the body is read — an unauthenticated client gets
401 and its connection closed, never a parser message. The body is then read against a size limit
(413) and a deadline, ``body_timeout_s`` for the whole body (408): a slow or never-ending body,
chunked or not, holds at most ``max_body_bytes`` for at most ``body_timeout_s``, and its
connection is closed. Bodies are strict JSON (no NaN/Infinity, no number overflowing a float),
``step`` an integer in [0, 10^12], and every record is validated before anything is scored: a
request that fails gets 422 with the reason and changes no state (the pipeline restores its state
if scoring raises midway, e.g. a shaper refusing a record's meta).

The pipeline (and its state) lives for the server's lifetime: saved every ``save_every_s`` and
on shutdown. Each request is one step for schedules and state unless it carries ``step``
(``/score`` records may carry their own). Scoring runs in worker threads, off the event loop,
at most ``max_concurrency`` requests at a time; the rest queue (no 503) — OpenRLHF's client waits
180 s and retries, so size ``max_concurrency`` and the rollout batch accordingly. Requests in
flight verify together on the engine's shared worker pool: a hung verifier costs its own request
at most the spec's ``timeout_s`` (the engine kills and replaces the worker) and delays no other.
"""

# No "from __future__ import annotations": FastAPI reads the route signatures at runtime.
import asyncio
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from ..pipeline import Pipeline, load_spec
from ..records import RecordError, parse_line, validate_record
from ..registry import SpecError
from ..types import MAX_STEP
from . import nemo_gym
from .group_barrier import BarrierClosed, ClientGone, GroupBarrier
from .grouping import PartialGroupError, group_aware_shapers, per_sample_blockers
from .openrlhf import check_groups, response_rows, to_records, to_response


class Guard:
    """ASGI middleware in front of every POST: bearer token first (401, no body read), then the
    body read no further than ``max_bytes`` (413) and for no longer than ``timeout_s`` in all (408).
    Every refusal closes the connection, so a client that keeps sending holds nothing."""

    def __init__(self, app: Any, token: str | None, max_bytes: int, timeout_s: float):
        self.app = app
        self.token = token.encode() if token is not None else None
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.token is not None:
            header = headers.get(b"authorization", b"")
            given = header[7:] if header[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(given, self.token):
                return await _refuse(send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks, size = [], 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return await _refuse(send, 408, f"request body not received within {self.timeout_s:g}s")
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        await _refuse(send, 413, f"request body over {self.max_bytes} bytes")


async def _refuse(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006 (never mutated)
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    spec: Any,
    token: str | None = None,
    max_body_bytes: int = 16 * 2**20,
    max_concurrency: int = 4,
    save_every_s: float = 60.0,
    group_size: int | None = None,
    body_timeout_s: float = 30.0,
    group_timeout_s: float = 120.0,
    groups_per_call: int = 1,
) -> Any:
    """The FastAPI application for ``spec`` (path, dict, Spec or Pipeline).

    ``group_size``: rollouts per prompt (OpenRLHF's ``n_samples_per_prompt``); /get_reward then
    refuses multi-rollout requests that hold part of a group, and holds one-rollout requests in the
    group barrier for at most ``group_timeout_s``, scoring ``groups_per_call`` complete groups per
    call (one step). ``body_timeout_s``: the longest a client may take to send its whole body.
    """
    from fastapi import FastAPI, HTTPException, Request, Response
    from pydantic import BaseModel, Field, ValidationError, model_validator

    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    if group_size is None and group_aware_shapers(pipeline):
        raise SpecError(
            f"the spec's group-aware shapers ({', '.join(group_aware_shapers(pipeline))}) need whole groups, and "
            "rollouts sent one per request (OpenRLHF's client) can only be grouped with a known group size: "
            "give --num-generations (OpenRLHF's --n_samples_per_prompt; create_app's group_size)"
        )
    pipeline.start_workers()  # at start-up: the first request does not wait for worker processes
    limiter = asyncio.Semaphore(max_concurrency)
    scorers = ThreadPoolExecutor(max_concurrency, thread_name_prefix="rewardsmith-score")
    Step = Field(default=None, ge=0, le=MAX_STEP, strict=True)  # the training step: an integer, never 1e20 or "3"

    class RewardRequest(BaseModel):
        query: list[str]
        prompts: list[str] | None = None
        labels: list[Any] | None = None
        step: int | None = Step  # not part of OpenRLHF's protocol: the training step, for clients that know it
        group_ids: list[str] | None = None  # not OpenRLHF's either: each rollout's group, instead of its prompt

        @model_validator(mode="after")
        def _same_length(self):
            for name in ("prompts", "labels", "group_ids"):
                values = getattr(self, name)
                if values is not None and len(values) != len(self.query):
                    raise ValueError(f"'{name}' has {len(values)} items but 'query' has {len(self.query)}")
            return self

    class ScoreRequest(BaseModel):
        records: list[dict[str, Any]]
        step: int | None = Step

    async def parse(request: Request, model: type[BaseModel]) -> Any:
        """The body as ``model``: strict JSON, every field checked; 422 with the reason otherwise."""
        try:
            return model.model_validate(parse_line((await request.body()).decode("utf-8")))
        except UnicodeDecodeError:
            raise HTTPException(status_code=422, detail="request body is not UTF-8") from None
        except RecordError as exc:
            raise HTTPException(status_code=422, detail=f"request body: {exc}") from None
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:10])
            raise HTTPException(status_code=422, detail=detail) from None

    async def score(records: list[dict[str, Any]], step: int | None = None):
        """Score off the event loop; a request the pipeline refuses is a 422 and has changed nothing."""
        for i, rec in enumerate(records):
            try:
                validate_record(rec)
            except RecordError as exc:
                raise HTTPException(status_code=422, detail=f"records[{i}]: {exc}") from None
        async with limiter:  # requests beyond max_concurrency wait here
            try:
                return await asyncio.get_running_loop().run_in_executor(scorers, pipeline.score, records, step)
            except (RecordError, ValueError) as exc:  # bad input found while scoring; the state is restored
                raise HTTPException(status_code=422, detail=str(exc)[:1000]) from None

    async def score_rows(records: list[dict[str, Any]], step: int | None) -> list[tuple[Any, int, dict[str, Any]]]:
        """Per record: the batch's scores, its index in them and its OpenRLHF answer row."""
        scores = await score(records, step)
        return [(scores, i, row) for i, row in enumerate(response_rows(to_response(pipeline, scores)))]

    barrier = (
        GroupBarrier(score_rows, group_size, group_timeout_s, groups_per_call)
        if group_size is not None and group_size > 1 and per_sample_blockers(pipeline)
        else None
    )

    async def wait_for_group(request: Request, record: dict[str, Any], step: int | None, where: str) -> Any:
        """A one-rollout request's ``(scores, index, OpenRLHF row)`` once its group is scored (the barrier's
        rules), or a 499 response when the client has gone."""
        try:
            validate_record(record)
        except RecordError as exc:
            raise HTTPException(status_code=422, detail=f"{where}: {exc}") from None

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        try:
            return await barrier.submit(record, step, disconnected)
        except BarrierClosed as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except ClientGone:
            return Response(status_code=499)  # nobody is left to read it

    async def save_periodically() -> None:
        while True:
            await asyncio.sleep(save_every_s)
            await asyncio.to_thread(pipeline.save_state)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        saver = asyncio.create_task(save_periodically())
        try:
            yield
        finally:
            saver.cancel()
            if barrier is not None:
                await barrier.close()
            scorers.shutdown(wait=True)
            pipeline.save_state()
            pipeline.close()

    app = FastAPI(title="rewardsmith", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Guard, token=token, max_bytes=max_body_bytes, timeout_s=body_timeout_s)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "step": pipeline.state.step,
            "spec": pipeline.spec.fingerprint(),
            "group_barrier": barrier.metrics() if barrier is not None else None,
        }

    @app.post("/get_reward")
    async def get_reward(request: Request) -> dict[str, Any]:
        req = await parse(request, RewardRequest)
        records = to_records(req.query, req.prompts, req.labels, req.group_ids)
        if len(records) == 1 and barrier is not None:
            if not ((req.group_ids and req.group_ids[0]) or (req.prompts and req.prompts[0])):
                raise HTTPException(
                    status_code=422,
                    detail="a one-rollout request needs its prompt ('prompts') or a 'group_ids' entry: "
                    "the server groups rollouts by it",
                )
            got = await wait_for_group(request, records[0], req.step, "query[0]")
            return got if isinstance(got, Response) else got[2]
        if len(records) > 1:  # a lone rollout without a barrier: no shaper of the spec looks beyond it
            try:
                check_groups(pipeline, records, group_size)
            except PartialGroupError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
        return to_response(pipeline, await score(records, req.step))

    @app.post("/score")
    async def score_records(request: Request) -> dict[str, Any]:
        req = await parse(request, ScoreRequest)
        t0 = time.perf_counter()
        s = await score(req.records, req.step)
        summary = s.summary()
        summary["seconds"] = time.perf_counter() - t0
        return {
            "records": s.to_records(req.records),
            "summary": {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()},
        }

    class VerifyRequest(BaseModel, extra="allow"):  # NeMo Gym's BaseVerifyRequest plus the dataset row's fields
        responses_create_params: dict[str, Any]
        response: dict[str, Any]

    verify_blockers = per_sample_blockers(pipeline)

    @app.post("/verify")
    async def verify(request: Request) -> dict[str, Any]:
        # NeMo Gym verifies one rollout per call: a spec that needs groups, steps or shared state waits at the
        # barrier for its task's other rollouts (they share _ng_task_index, or the prompt)
        if verify_blockers and barrier is None:
            raise HTTPException(
                status_code=422,
                detail=f"/verify scores one rollout at a time, but shapers {verify_blockers} need whole groups, "
                "a training step or one shared state: start the server with --num-generations N (NeMo Gym's "
                "num_repeats) so that /verify waits for whole groups, or use /get_reward or /score",
            )
        body = (await parse(request, VerifyRequest)).model_dump()
        try:
            record = nemo_gym.to_record(body)
        except RecordError as exc:
            raise HTTPException(status_code=422, detail=f"verify request: {exc}") from None
        if barrier is None:
            return nemo_gym.to_response(body, await score([record]))
        got = await wait_for_group(request, record, None, "verify request")
        return got if isinstance(got, Response) else nemo_gym.to_response(body, got[0], got[1])

    app.state.pipeline = pipeline
    app.state.barrier = barrier
    return app
