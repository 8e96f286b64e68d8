"""``judge``: an LLM judge behind any OpenAI-compatible endpoint, one template per method.

The templates (``template:``) and the papers they follow are described in
:mod:`rewardsmith.models.templates`; the transport (concurrency, rate limits, retries, disk
cache, budgets, cost) in :mod:`rewardsmith.models.client`. A batch is judged in one event loop
with at most ``concurrency`` requests in flight — not through the per-item process pool.

An unparseable, refused, truncated or failed judgement (server down, over budget) is
*unknown*: status ``judge_failed``, score NaN, ``correct`` null; the pipeline leaves the row's
reward null and out of the advantages, and the TRL adapter returns ``None`` for it — never 0.

    verifier:
      name: judge
      template: pointwise
      base_url: http://127.0.0.1:8000/v1
      model: Qwen/Qwen2.5-7B-Instruct
      cache_dir: runs/judge-cache

The record's ``prompt`` is the query shown to the judge; ``<think>…</think>`` is removed from the
completion first, so the judge sees the answer the user would.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from ..models.client import OVER_BUDGET, ChatClient, ClientSettings, Reply
from ..models.templates import JudgeParseError, parse_reply, render, tool_request
from ..registry import Options, SpecError, register
from .base import BAD_REFERENCE, JUDGE_FAILED, OK, Job, Verdict, Verifier

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
PAPERS = (
    "WildBench (Lin et al., 2024); Search-Gen-V (2025); RewardAnything (Yu et al., 2025); ACE-RL (2025); "
    "AutoRule (Wang et al., 2025); Themis (Li et al., 2024)"
)


class JudgeOptions(Options):
    template: Literal["pointwise", "pairwise", "nuggets", "principles", "checklist", "autorule", "themis"] = "pointwise"
    base_url: str = Field(description="the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="model name sent with each request")
    api_key_env: str | None = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int = Field(default=512, ge=1, description="reply length cap per request")
    concurrency: int = Field(default=8, ge=1, description="requests in flight at once")
    timeout_s: float = Field(default=60.0, gt=0, description="per-request timeout")
    max_retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0, description="first retry delay; doubles each retry")
    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute")
    cache_dir: str | None = Field(default=None, description="on-disk reply cache (a rerun sends no request)")
    max_requests: int | None = Field(default=None, ge=0, description="requests per batch (step); the rest unknown")
    max_tokens_per_batch: int | None = Field(default=None, ge=0, description="tokens per batch (step)")
    price_input_per_mtok: float = Field(default=0.0, ge=0, description="USD per million prompt tokens")
    price_output_per_mtok: float = Field(default=0.0, ge=0, description="USD per million completion tokens")
    json_mode: bool = Field(default=False, description="send response_format {type: json_object}")
    principles: str | None = Field(default=None, description="principles template: the principle to follow")
    rules: list[str] = Field(default_factory=list, description="autorule template: the rules")
    rules_file: str | None = Field(default=None, description="autorule template: YAML from autorule extract")
    swap: bool = Field(default=False, description="pairwise: judge both orders and average (position bias)")
    max_tool_calls: int = Field(default=3, ge=0, description="themis: tool calls per judgement")
    tool_timeout_s: float = Field(default=5.0, gt=0, description="themis: python tool wall clock")

    @model_validator(mode="after")
    def _check(self) -> JudgeOptions:
        if self.template == "principles" and not self.principles:
            raise ValueError("template principles needs principles: the principle text")
        if self.template == "autorule" and not (self.rules or self.rules_file):
            raise ValueError("template autorule needs rules or rules_file")
        return self


def _load_rules(path: str) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SpecError(f"judge: cannot read rules_file {path!r}: {exc}") from None
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list) or not rules:
        raise SpecError(f"judge: rules_file {path!r} holds no list of rules (a 'rules:' list)")
    return [str(r) for r in rules]


@register(
    "verifier",
    "judge",
    "LLM judge on an OpenAI-compatible server (pointwise, pairwise, nuggets, principles, checklist, autorule, themis)",
    PAPERS,
)
class JudgeVerifier(Verifier):
    Options = JudgeOptions
    isolate: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True
    reads_prompt: ClassVar[bool] = True  # the query shown to the judge, in meta.prompt
    example_options: ClassVar[dict[str, Any]] = {
        "template": "pointwise",
        "base_url": "http://127.0.0.1:8000/v1",
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "cache_dir": "runs/judge-cache",
    }

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        o: JudgeOptions = self.options  # type: ignore[assignment]
        self.rules = list(o.rules) + (_load_rules(o.rules_file) if o.rules_file else [])
        self.client = ChatClient(
            ClientSettings(
                base_url=o.base_url,
                model=o.model,
                api_key_env=o.api_key_env,
                temperature=o.temperature,
                max_tokens=o.max_tokens,
                concurrency=o.concurrency,
                timeout_s=o.timeout_s,
                max_retries=o.max_retries,
                backoff_s=o.backoff_s,
                rpm=o.rpm,
                tpm=o.tpm,
                cache_dir=o.cache_dir,
                max_requests=o.max_requests,
                max_tokens_per_batch=o.max_tokens_per_batch,
                price_input_per_mtok=o.price_input_per_mtok,
                price_output_per_mtok=o.price_output_per_mtok,
                response_format={"type": "json_object"} if o.json_mode else None,
            )
        )

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        response = _THINK.sub("", completion).strip()
        return Job(response, reference, meta)

    def check(self, job: Job) -> Verdict:
        return self.check_batch([job])[0]

    def check_batch(self, jobs: list[Job]) -> list[Verdict]:
        """Every job's verdict from one event loop; a budget overrun is logged with its counts."""
        verdicts = self.client.run([lambda j=j: self._judge(j) for j in jobs])
        u = self.client.batch_usage
        if u.over_budget:
            import logging

            logging.getLogger("rewardsmith.judge").warning(
                "judge budget reached: %d of %d judgements not requested (unknown); max_requests=%s, "
                "max_tokens_per_batch=%s",
                u.over_budget,
                len(jobs),
                self.client.settings.max_requests,
                self.client.settings.max_tokens_per_batch,
            )
        return verdicts

    async def _judge(self, job: Job) -> Verdict:
        o: JudgeOptions = self.options  # type: ignore[assignment]
        meta = job.meta if isinstance(job.meta, dict) else {}
        try:
            messages = render(
                o.template, str(meta.get("prompt", "")), job.prediction, meta, job.reference, o.principles, self.rules
            )
        except ValueError as exc:  # the record lacks what the template needs (nuggets, a reference, ...)
            return Verdict(math.nan, BAD_REFERENCE, f"cannot render the prompt: {exc}")
        if o.template == "pairwise" and o.swap:
            return await self._pairwise_swapped(job, meta, messages)
        if o.template == "themis":
            return await self._with_tools(messages, meta)
        return self._verdict(await self.client.chat(messages), meta)

    def _verdict(self, reply: Reply, meta: dict[str, Any]) -> Verdict:
        o: JudgeOptions = self.options  # type: ignore[assignment]
        why = unknown_reason(reply)
        if why:
            return Verdict(math.nan, JUDGE_FAILED, why)
        try:
            score, detail = parse_reply(o.template, reply.text or "", meta, len(self.rules))
        except JudgeParseError as exc:
            return Verdict(math.nan, JUDGE_FAILED, f"unparseable judgement: {exc}; reply: {(reply.text or '')[:200]!r}")
        return Verdict(score, OK, detail)

    async def _pairwise_swapped(self, job: Job, meta: dict[str, Any], messages: list[dict[str, str]]) -> Verdict:
        """Both orders (response first, then reference first); the mean of the two outcomes."""
        ref = str(meta.get("reference_response", job.reference))
        swapped = render("pairwise", str(meta.get("prompt", "")), ref, {}, job.prediction)
        first = self._verdict(await self.client.chat(messages), meta)
        second = self._verdict(await self.client.chat(swapped), meta)
        return combine_swapped(first, second)

    async def _with_tools(self, messages: list[dict[str, str]], meta: dict[str, Any]) -> Verdict:
        o: JudgeOptions = self.options  # type: ignore[assignment]
        convo = list(messages)
        for _ in range(o.max_tool_calls + 1):
            reply = await self.client.chat(convo)
            why = unknown_reason(reply)
            if why:
                return Verdict(math.nan, JUDGE_FAILED, why)
            request = tool_request(reply.text or "")
            if request is None:
                return self._verdict(reply, meta)
            observation = run_tool(*request, timeout_s=o.tool_timeout_s)
            convo += [
                {"role": "assistant", "content": reply.text or ""},
                {"role": "user", "content": f"Observation: {observation}"},
            ]
        return Verdict(math.nan, JUDGE_FAILED, f"no judgement after {o.max_tool_calls} tool calls")

    def usage(self) -> dict[str, Any]:
        """Requests, cache hits, retries, failures, budget refusals, tokens and cost so far."""
        from dataclasses import asdict

        return asdict(self.client.usage)

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])


def combine_swapped(first: Verdict, second: Verdict) -> Verdict:
    """Pairwise judged in both orders: ``first`` rates the response as A, ``second`` as B, so the
    response's outcome is the mean of ``first`` and ``1 − second``; unknown when either is."""
    if first.status != OK or second.status != OK:
        return first if first.status != OK else second
    return Verdict((first.score + 1.0 - second.score) / 2, OK, f"{first.detail}; swapped {second.detail}")


def unknown_reason(reply: Reply) -> str:
    """Why a reply holds no judgement ('' when it may): failure, budget, refusal or content filter."""
    if reply.text is None:
        return "over budget: not requested" if reply.error == OVER_BUDGET else f"judge request failed: {reply.error}"
    if reply.refusal:
        return f"judge refused: {str(reply.refusal)[:200]}"
    if reply.finish_reason == "content_filter":
        return "judge reply withheld by the server's content filter"
    return ""


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float:
    """Arithmetic only (numbers, + − × ÷ // % **, parentheses); anything else is a ValueError."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")

    if len(expression) > 500:
        raise ValueError("expression longer than 500 characters")
    return ev(ast.parse(expression.strip(), mode="eval"))


def run_tool(tool: str, text: str, timeout_s: float = 5.0) -> str:
    """A themis tool's observation: ``calculator`` here, ``python`` in the code verifier's sandbox."""
    if tool == "calculator":
        try:
            return repr(calculate(text))
        except (ValueError, SyntaxError, ZeroDivisionError, OverflowError) as exc:
            return f"error: {exc}"
    if tool == "python":
        from .sandbox import Limits, probe_bwrap

        box, why = probe_bwrap()
        if box is None:
            return f"error: no sandbox available for the python tool ({why})"
        out = box.run({"runner.py": text}, b"", Limits(timeout_s=timeout_s, memory_mb=512, output_bytes=4096))
        if out.error or out.timed_out:
            return f"error: {out.error or 'timed out'}"
        return (out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace"))[-2000:] or "(no output)"
    return f"error: unknown tool {tool!r}; tools: calculator, python"
