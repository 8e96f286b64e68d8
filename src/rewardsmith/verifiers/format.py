"""``think_answer``: the R1-style format check (a ``<think>`` block, then an answer).

Passes (1.0) when the completion has exactly one ``<think>...</think>`` block, not blank (an
empty block passes the tags without any reasoning; ``allow_empty: true`` accepts it, as Qwen3's
non-thinking mode writes ``<think>\n\n</think>``), with something after it, and — with
``answer_tag: true`` — exactly one ``<answer>...</answer>`` after the thinking.
``think_in_prompt: true`` accepts a completion that starts inside the thinking (chat templates
that put ``<think>`` in the prompt). ``reasoning_delimiters`` (default
``["<think>", "</think>"]``) names the block's tags; the verifiers take the same option and
never read an answer inside the block (:func:`rewardsmith.verifiers.extract.answer_region`).
Used as ``format:`` in a spec, either
gating the reward (``mode: gate``; failures get ``base.no_answer`` and are never shaped) or
added (``mode: add`` with ``weight``).

    >>> from rewardsmith.verifiers.format import ThinkAnswerFormat
    >>> ThinkAnswerFormat().score("<think>2+2=4</think> The answer is 4.")
    1.0
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ..registry import Component, Options, register
from .extract import DEFAULT_REASONING, check_delimiters


class ThinkAnswerOptions(Options):
    answer_tag: bool = False
    think_in_prompt: bool = False
    allow_empty: bool = False
    reasoning_delimiters: Annotated[tuple[str, str], AfterValidator(check_delimiters)] = Field(
        default=DEFAULT_REASONING, description="opening and closing tag of the reasoning block"
    )


@register(
    "format",
    "think_answer",
    "R1-style format: one <think>...</think> block followed by an answer (optionally <answer> tags).",
    "DeepSeek-R1 (2025)",
)
class ThinkAnswerFormat(Component):
    Options = ThinkAnswerOptions

    def score(self, completion: str) -> float:
        opening, closing = self.options.reasoning_delimiters
        text = completion
        if self.options.think_in_prompt and opening not in text:
            text = opening + text
        if text.count(opening) != 1 or text.count(closing) != 1:
            return 0.0
        head, _, rest = text.partition(opening)
        thinking, _, after = rest.partition(closing)
        if head.strip() or not after.strip() or not (thinking.strip() or self.options.allow_empty):
            return 0.0
        if self.options.answer_tag:
            if after.count("<answer>") != 1 or after.count("</answer>") != 1:
                return 0.0
            inner = after.partition("<answer>")[2].partition("</answer>")[0]
            if not inner.strip():
                return 0.0
        return 1.0
