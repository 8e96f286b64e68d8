"""``oni``: an ONI-style intrinsic reward per turn from an LLM judge's feedback.

ONI (Zheng et al. 2025, "Online Intrinsic Rewards for Decision Making Agents from Large Language
Model Feedback") asks an LLM, for each observed step, whether it is helpful progress towards the
task, and turns the yes/no labels into an intrinsic reward r_int ∈ {0, 1} added to the task reward
with a weight β. Its *retrieval* variant looks each step's text up in a table of labels (a step
not labelled yet gets 0); that is what this component does, with the judge's on-disk cache as the
table. ONI's learned variants (a classifier or ranking model distilled from the labels, trained
alongside the policy) are not implemented: they are trainer-side models, not a reward function.

The judge is any OpenAI-compatible server (the ``judge`` verifier's transport,
:mod:`rewardsmith.models.client`). The prompt wording is this project's [unverified against
ONI's prompt]; the reply's first word ``yes``/``no`` is the label; an unparseable or failed reply
is an unlabelled step (0), as in ONI's retrieval variant.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..models.client import ChatClient, ClientSettings, Reply
from ..registry import Options, register
from .base import Dense, Shaper, ShapingContext

_WORD = re.compile(r"[a-z]+")
_PROMPT = (
    "You are watching an agent work on a task, one step at a time.\n\n"
    "Task:\n{task}\n\nThe agent's step:\n{step}\n\n"
    "Is this step helpful progress towards completing the task? Answer with one word: yes or no."
)


def parse_label(text: str | None) -> float | None:
    """1.0 for a reply whose first word is yes, 0.0 for no, None otherwise."""
    words = _WORD.findall((text or "").lower())
    if not words or words[0] not in ("yes", "no"):
        return None
    return 1.0 if words[0] == "yes" else 0.0


class OniOptions(Options):
    base_url: str = Field(description="the judge's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="model name sent with each request")
    coef: float = Field(default=1.0, description="β: weight of the intrinsic reward (each labelled step adds β·1)")
    once_per_text: bool = Field(
        default=True, description="pay a step whose text repeats an earlier step of the same trajectory nothing"
    )
    api_key_env: str | None = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    max_tokens: int = Field(default=8, ge=1, description="reply length cap (one word is asked for)")
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    cache_dir: str | None = Field(default=None, description="on-disk label cache (ONI's table of labelled steps)")
    max_requests: int | None = Field(default=None, ge=0, description="requests per batch; the rest unlabelled (0)")


@register(
    "shaper",
    "oni",
    "ONI intrinsic reward: an LLM judge labels each assistant turn helpful (yes/no); adds coef per helpful turn",
    "ONI: Online Intrinsic Rewards from LLM Feedback (Zheng et al. 2025)",
)
class Oni(Shaper):
    """r_int,t = β·1[judge says turn t is helpful progress on the task] (ONI retrieval variant, §3);
    adds Σ_t r_int,t to the reward; dense per turn. The task is the record's prompt; a turn's text is
    its content followed by its tool calls as JSON (a single-turn record is one turn). With
    ``once_per_text`` a turn repeating an earlier turn's text earns nothing (repeating a step is not
    progress; without it a policy could farm the bonus)."""

    Options = OniOptions
    needs_model: ClassVar[bool] = True
    dense_unit: ClassVar[str | None] = "turn"
    example_options: ClassVar[dict[str, Any]] = {
        "base_url": "http://127.0.0.1:8000/v1",
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "max_retries": 0,
    }

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        o: OniOptions = self.options  # type: ignore[assignment]
        self.client = ChatClient(
            ClientSettings(
                base_url=o.base_url,
                model=o.model,
                api_key_env=o.api_key_env,
                max_tokens=o.max_tokens,
                concurrency=o.concurrency,
                timeout_s=o.timeout_s,
                max_retries=o.max_retries,
                cache_dir=o.cache_dir,
                max_requests=o.max_requests,
            )
        )

    def steps(self, ctx: ShapingContext, i: int) -> list[str]:
        t = ctx.batch.trajectories
        if t is None or not t.has_messages(i):
            return [ctx.batch.completions[i]]
        out = []
        for k in t.assistant(i):
            calls = "".join("\n" + json.dumps(c, ensure_ascii=False) for c in t.tool_calls[k])
            out.append(t.text[k] + calls)
        return out

    def labels(self, requests: list[tuple[str, str]]) -> dict[tuple[str, str], float | None]:
        """The judge's label of each distinct (task, step), asked once per batch."""
        todo = list(dict.fromkeys(requests))

        async def ask(task: str, step: str) -> Reply:
            content = _PROMPT.format(task=task, step=step)
            return await self.client.chat([{"role": "user", "content": content}])

        replies = self.client.run([lambda p=p: ask(*p) for p in todo]) if todo else []
        return {p: parse_label(r.text) for p, r in zip(todo, replies)}

    def term(self, ctx: ShapingContext) -> np.ndarray:
        o: OniOptions = self.options  # type: ignore[assignment]
        steps = [self.steps(ctx, i) for i in range(len(ctx.batch))]
        labels = self.labels([(ctx.batch.prompts[i], s) for i, row in enumerate(steps) for s in row])
        rewards = []
        for i, row in enumerate(steps):
            seen: set[str] = set()
            r = []
            for s in row:
                label = labels[(ctx.batch.prompts[i], s)] or 0.0  # unlabelled: no bonus (ONI retrieval)
                r.append(0.0 if o.once_per_text and s in seen else o.coef * label)
                seen.add(s)
            rewards.append(r)
        ctx.dense[self.name] = Dense("turn", rewards)
        return np.array([sum(r) for r in rewards])

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])
