"""An OpenAI-compatible chat client for LLM judges: async, bounded, cached and accounted.

One :class:`ChatClient` talks to any server with ``POST {base_url}/chat/completions`` (OpenAI,
vLLM, SGLang, ``transformers serve``, LiteLLM proxies). What it does for a batch of requests:

- concurrency: at most ``concurrency`` requests in flight (one event loop per batch);
- rate limits: at most ``rpm`` requests and ``tpm`` tokens in any 60-second window (tokens
  estimated before sending as ``chars/4 + max_tokens``, then counted from ``usage``);
- retries: transport errors, timeouts, HTTP 408/409/429 and 5xx are retried up to
  ``max_retries`` times after ``backoff_s·2^k`` seconds (a ``Retry-After`` header, capped at
  60 s, wins); other HTTP errors are not retried;
- cache: a reply is stored on disk under the SHA-256 of (model, messages, sampling params), so
  a rerun of the same batch sends no request at all; failures are never cached;
- budgets: ``max_requests`` (judgement requests; their retries not counted) and
  ``max_tokens_per_batch`` (estimated when admitted, corrected from ``usage``) per batch, i.e. per
  training step; a request beyond them is not sent and comes back failed, ``over budget``;
- accounting: requests, cache hits, retries, failures, prompt/completion tokens and the cost
  from a price table (USD per million input/output tokens).

A failed request is a :class:`Reply` with ``text=None`` and its reason in ``error``: callers
turn it into an *unknown* judgement, never a low score.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_RETRY_STATUS = {408, 409, 429} | set(range(500, 600))
OVER_BUDGET = "over budget"


@dataclass(frozen=True)
class ClientSettings:
    """Where the judge model is and how hard to use it (every field is a judge spec option)."""

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # the API key is read from this variable, never from the spec
    temperature: float = 0.0
    max_tokens: int = 512
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    cache_dir: str | None = None
    max_requests: int | None = None  # per batch (per step)
    max_tokens_per_batch: int | None = None
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    response_format: dict[str, Any] | None = None  # sent as OpenAI's ``response_format`` when set


@dataclass
class Reply:
    """One chat completion: ``text`` (None when the request failed), why it failed, its usage."""

    text: str | None
    error: str = ""
    refusal: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    message: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    requests: int = 0  # sent to the server (retries included)
    cache_hits: int = 0
    retries: int = 0
    failed_requests: int = 0  # calls that produced no reply (after retries)
    over_budget: int = 0  # calls refused by the per-batch budget
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


def cache_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """SHA-256 of the request's content: model, messages and sampling parameters."""
    blob = json.dumps(
        {"model": model, "messages": list(messages), "params": params}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class DiskCache:
    """Replies on disk, one JSON file per key (``ab/abcdef….json``), written atomically."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False))
        os.replace(tmp, path)


class RateLimiter:
    """Requests and tokens per sliding 60-second window; ``acquire`` waits until both fit."""

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float = 60.0):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._events: deque[tuple[float, int]] = deque()

    def _prune(self, now: float) -> None:
        while self._events and now - self._events[0][0] >= self.window_s:
            self._events.popleft()

    def wait_time(self, tokens: int, now: float) -> float:
        """Seconds until a request of ``tokens`` fits (0 when it fits now)."""
        self._prune(now)
        waits = [0.0]
        if self.rpm is not None and len(self._events) >= self.rpm:
            waits.append(self._events[len(self._events) - self.rpm][0] + self.window_s - now)
        if self.tpm is not None:
            used = sum(t for _, t in self._events)
            excess = used + min(tokens, self.tpm) - self.tpm
            for stamp, t in self._events:  # the oldest events leave the window first
                if excess <= 0:
                    break
                excess -= t
                waits.append(stamp + self.window_s - now)
        return max(waits)

    async def acquire(self, tokens: int) -> None:
        while True:
            wait = self.wait_time(tokens, time.monotonic())
            if wait <= 0:
                self._events.append((time.monotonic(), tokens))
                return
            await asyncio.sleep(wait)


def estimate_tokens(messages: Sequence[dict[str, Any]], max_tokens: int) -> int:
    """A request's token cost before it is sent: about 4 characters a token, plus the reply's cap."""
    return sum(len(str(m.get("content") or "")) for m in messages) // 4 + max_tokens


class ChatClient:
    """Chat completions against an OpenAI-compatible server; see the module docstring.

    ``run(factories)`` runs one coroutine per item in one event loop (each may call
    :meth:`chat` several times, e.g. a tool-using judge) and resets the per-batch budget.
    """

    def __init__(self, settings: ClientSettings):
        if settings.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {settings.concurrency}")
        self.settings = settings
        self.cache = DiskCache(settings.cache_dir) if settings.cache_dir else None
        self.usage = Usage()  # over the client's life
        self.batch_usage = Usage()  # over the last ``run``
        self._limiter = RateLimiter(settings.rpm, settings.tpm)
        self._tokens_spent = 0
        self._admitted = 0  # requests let through the per-batch budget (their retries not counted)
        self._http: Any = None
        self._sem: asyncio.Semaphore | None = None

    def params(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {"temperature": s.temperature, "max_tokens": s.max_tokens}
        if s.response_format is not None:
            out["response_format"] = s.response_format
        return out

    # ------------------------------------------------------------------ batch
    def run(self, factories: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Await every factory's coroutine in one event loop (a fresh thread's if one is running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(factories))
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["out"] = asyncio.run(self._run(factories))
            except BaseException as exc:  # re-raised in the caller's thread
                box["exc"] = exc

        thread = threading.Thread(target=target, name="rewardsmith-judge")
        thread.start()
        thread.join()
        if "exc" in box:
            raise box["exc"]
        return box["out"]

    async def _run(self, factories: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        import httpx

        self.batch_usage = Usage()
        self._tokens_spent = 0
        self._admitted = 0
        self._sem = asyncio.Semaphore(self.settings.concurrency)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.settings.api_key_env) if self.settings.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=self.settings.concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=self.settings.timeout_s, limits=limits) as http:
            self._http = http
            try:
                return list(await asyncio.gather(*(f() for f in factories)))
            finally:
                self._http = None
                self.usage.add(self.batch_usage)

    # ------------------------------------------------------------------ one request
    async def chat(self, messages: Sequence[dict[str, Any]], **extra: Any) -> Reply:
        """One completion for ``messages`` (cache first, then the server within the budgets)."""
        s = self.settings
        params = {**self.params(), **extra}
        key = cache_key(s.model, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.batch_usage.cache_hits += 1
                return Reply(**{**hit, "cached": True})
        estimate = estimate_tokens(messages, int(params.get("max_tokens") or s.max_tokens))
        if (s.max_requests is not None and self._admitted >= s.max_requests) or (
            s.max_tokens_per_batch is not None and self._tokens_spent + estimate > s.max_tokens_per_batch
        ):
            self.batch_usage.over_budget += 1
            return Reply(None, OVER_BUDGET)
        self._tokens_spent += estimate  # reserved now so concurrent requests cannot overrun the budget
        self._admitted += 1
        assert self._sem is not None, "chat() runs inside ChatClient.run"
        async with self._sem:
            reply = await self._send(messages, params, estimate)
        if reply.text is None:
            self.batch_usage.failed_requests += 1
        else:
            self._tokens_spent += reply.prompt_tokens + reply.completion_tokens - estimate
            if self.cache is not None:
                stored = asdict(reply)
                stored.pop("cached")
                self.cache.put(key, stored)
        return reply

    async def _send(self, messages: Sequence[dict[str, Any]], params: dict[str, Any], estimate: int) -> Reply:
        import httpx

        s = self.settings
        body = {"model": s.model, "messages": list(messages), **params}
        url = s.base_url.rstrip("/") + "/chat/completions"
        error = ""
        for attempt in range(s.max_retries + 1):
            if attempt:
                self.batch_usage.retries += 1
            await self._limiter.acquire(estimate)
            self.batch_usage.requests += 1
            retry_after = None
            try:
                resp = await asyncio.wait_for(self._http.post(url, json=body), s.timeout_s)  # a total, not per read
            except asyncio.TimeoutError:
                error = f"no response within timeout_s={s.timeout_s:g}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
            else:
                if resp.status_code == 200:
                    return self._parse(resp)
                error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in _RETRY_STATUS:
                    return Reply(None, error)
                retry_after = _retry_after(resp.headers.get("retry-after"))
            if attempt < s.max_retries:
                delay = retry_after if retry_after is not None else s.backoff_s * 2**attempt * (0.5 + random.random())
                await asyncio.sleep(delay)
        return Reply(None, f"failed after {s.max_retries + 1} attempts: {error}")

    def _parse(self, resp: Any) -> Reply:
        try:
            data = resp.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Reply(None, f"malformed response: {type(exc).__name__}: {resp.text[:200]}")
        reply = Reply(
            message.get("content") if isinstance(message.get("content"), str) else "",
            refusal=message.get("refusal"),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            message={k: v for k, v in message.items() if k in ("role", "content", "tool_calls", "refusal")},
        )
        s = self.settings
        self.batch_usage.prompt_tokens += reply.prompt_tokens
        self.batch_usage.completion_tokens += reply.completion_tokens
        self.batch_usage.cost_usd += (
            reply.prompt_tokens * s.price_input_per_mtok + reply.completion_tokens * s.price_output_per_mtok
        ) / 1e6
        return reply


def _retry_after(value: str | None) -> float | None:
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
