"""HTTP reward server speaking OpenRLHF's remote reward protocol (``rewardkit serve``).

Routes:

- ``POST /get_reward`` — OpenRLHF: ``{"query": [...], "prompts": [...], "labels": [...]}``
  (query = prompt + response) → ``{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}``.
  Rollouts sharing a prompt form a group.
- ``POST /score`` — rollout records (``{"records": [...]}``, DESIGN.md schema) → the records
  with ``reward``/``correct``/``components`` added, plus the summary.
- ``GET /healthz`` — liveness and the pipeline's step; no token needed.

The pipeline (and its state) lives for the server's lifetime: saved every ``save_every_s`` and
on shutdown. Scoring runs in a worker thread, at most ``max_concurrency`` requests at a time
(the rest wait their turn); a hung verifier costs a request at most the spec's ``timeout_s``
per item because the engine kills it. Bodies over ``max_body_bytes`` get 413. With a token
configured, ``Authorization: Bearer <token>`` is required (constant-time comparison).
"""


# No "from __future__ import annotations": FastAPI reads the route signatures at runtime.
import asyncio
import hashlib
import hmac
import time
from contextlib import asynccontextmanager
from typing import Any

from ..pipeline import Pipeline
from ..records import RecordError, validate_record
from ..spec import load_spec


def _completion(query: str, prompt: str) -> str:
    return query[len(prompt):] if prompt and query.startswith(prompt) else query


def create_app(spec: Any, token: str | None = None, max_body_bytes: int = 16 * 2**20, max_concurrency: int = 4, save_every_s: float = 60.0) -> Any:
    """The FastAPI application for ``spec`` (path, dict, Spec or Pipeline)."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, model_validator

    pipeline = spec if isinstance(spec, Pipeline) else load_spec(spec)
    limiter = asyncio.Semaphore(max_concurrency)

    class RewardRequest(BaseModel):
        query: list[str]
        prompts: list[str] | None = None
        labels: list[str | None] | None = None

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

    app = FastAPI(title="rewardkit", lifespan=lifespan)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return JSONResponse({"detail": f"request body over {max_body_bytes} bytes"}, status_code=413)
        if request.method == "POST" and declared is None:
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse({"detail": f"request body over {max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def score(records: list[dict[str, Any]], step: int | None = None):
        async with limiter:
            return await asyncio.to_thread(pipeline.score, records, step)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "step": pipeline.state.step, "spec": pipeline.spec.fingerprint()}

    @app.post("/get_reward", dependencies=[Depends(authorize)])
    async def get_reward(req: RewardRequest) -> dict[str, Any]:
        prompts = req.prompts or [""] * len(req.query)
        labels = req.labels or [None] * len(req.query)
        records = [{"prompt_id": hashlib.sha1(p.encode()).hexdigest()[:16], "prompt": p, "completion": _completion(q, p), "answer": a}
                   for q, p, a in zip(req.query, prompts, labels)]
        s = await score(records)
        rewards = [float(v) for v in s.total]
        logs = {name: [None if v != v else float(v) for v in values] for name, values in s.components.items()}
        return {"rewards": rewards, "scores": rewards, "extra_logs": logs}

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
