"""HTTP reward server speaking OpenRLHF's remote reward protocol (``rewardsmith serve``).

Routes:

- ``POST /get_reward`` — OpenRLHF: ``{"query": [...], "prompts": [...], "labels": [...]}``
  (query = prompt + response) → ``{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}``
  (see :mod:`rewardsmith.integrations.openrlhf` for what each holds). Rollouts sharing a prompt form
  a group; with ``group_size`` (``--num-generations``) a request holding part of a group gets 422,
  and a spec with group-aware shapers refuses requests whose groups have unequal sizes.
- ``POST /score`` — rollout records (``{"records": [...]}``, the schema in docs/architecture.md) → the records
  with ``reward``/``correct``/``components`` added, plus the summary.
- ``GET /healthz`` — liveness and the pipeline's step; no token needed.

The pipeline (and its state) lives for the server's lifetime: saved every ``save_every_s`` and
on shutdown. Each request is one step for schedules and state unless it carries ``step``
(``/score`` records may carry their own). Scoring runs in a worker thread, off the event loop,
at most ``max_concurrency`` requests at a time; the rest queue (no 503) — OpenRLHF's client waits
180 s and retries, so size ``max_concurrency`` and the rollout batch accordingly. A hung verifier
costs at most the spec's ``timeout_s`` per unique item: the engine kills and replaces the worker.
Bodies over ``max_body_bytes`` get 413, malformed JSON or fields 422 with the reason. With a
token configured, ``Authorization: Bearer <token>`` is required (constant-time comparison).
"""


# No "from __future__ import annotations": FastAPI reads the route signatures at runtime.
import asyncio
import hmac
import json
import time
from contextlib import asynccontextmanager
from typing import Any

from ..pipeline import Pipeline
from ..records import RecordError, validate_record
from ..pipeline import load_spec
from .grouping import PartialGroupError
from .openrlhf import check_groups, to_records, to_response


class BodyLimit:
    """ASGI middleware: a POST body over ``max_bytes`` gets 413, read no further than the limit
    (a declared Content-Length is checked before reading; chunked bodies are counted as they arrive)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._reject(send)
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

    async def _reject(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(spec: Any, token: str | None = None, max_body_bytes: int = 16 * 2**20, max_concurrency: int = 4, save_every_s: float = 60.0,
               group_size: int | None = None) -> Any:
    """The FastAPI application for ``spec`` (path, dict, Spec or Pipeline).

    ``group_size``: rollouts per prompt (OpenRLHF's ``n_samples_per_prompt``); /get_reward then
    refuses requests that hold part of a group.
    """
    from fastapi import Depends, FastAPI, HTTPException, Request
    from pydantic import BaseModel, model_validator

    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    limiter = asyncio.Semaphore(max_concurrency)

    class RewardRequest(BaseModel):
        query: list[str]
        prompts: list[str] | None = None
        labels: list[Any] | None = None
        step: int | None = None  # not part of OpenRLHF's protocol: the training step, for clients that know it

        @model_validator(mode="after")
        def _same_length(self):
            for name in ("prompts", "labels"):
                values = getattr(self, name)
                if values is not None and len(values) != len(self.query):
                    raise ValueError(f"'{name}' has {len(values)} items but 'query' has {len(self.query)}")
            return self

    class ScoreRequest(BaseModel):
        records: list[dict[str, Any]]
        step: int | None = None

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
            pipeline.save_state()
            pipeline.close()

    app = FastAPI(title="rewardsmith", lifespan=lifespan)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def score(records: list[dict[str, Any]], step: int | None = None):
        async with limiter:  # requests beyond max_concurrency wait here; scoring runs off the event loop
            return await asyncio.to_thread(pipeline.score, records, step)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "step": pipeline.state.step, "spec": pipeline.spec.fingerprint()}

    @app.post("/get_reward", dependencies=[Depends(authorize)])
    async def get_reward(req: RewardRequest) -> dict[str, Any]:
        records = to_records(req.query, req.prompts, req.labels)
        try:
            check_groups(pipeline, records, group_size)
        except PartialGroupError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return to_response(pipeline, await score(records, req.step))

    @app.post("/score", dependencies=[Depends(authorize)])
    async def score_records(req: ScoreRequest) -> dict[str, Any]:
        for i, rec in enumerate(req.records):
            try:
                validate_record(rec)
            except RecordError as exc:
                raise HTTPException(status_code=422, detail=f"records[{i}]: {exc}") from None
        t0 = time.perf_counter()
        s = await score(req.records, req.step)
        summary = s.summary()
        summary["seconds"] = time.perf_counter() - t0
        return {"records": s.to_records(req.records), "summary": {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}}

    app.state.pipeline = pipeline
    return app
