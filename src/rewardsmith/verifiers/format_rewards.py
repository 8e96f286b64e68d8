"""Peer format rewards: ``tag_count`` (partial credit per tag), ``reasoning_steps`` and
``code_format`` (a fenced block in a required language), as open-r1's ``rewards.py``
(huggingface/open-r1@1416fa0: ``tag_count_reward``, ``reasoning_steps_reward``,
``get_code_format_reward``).

Each is a format component (``format:`` in a spec) scoring a completion in [0, 1]; with
``mode: add`` the score is added with ``weight``, with ``mode: gate`` only a full score (1.0)
passes. A conversational completion is scored per assistant message and averaged (see
:func:`score_format`).

    >>> from rewardsmith.verifiers.format_rewards import TagCount, ReasoningSteps, CodeFormat
    >>> TagCount().score("<think>\\nhm\\n</think>\\nThe answer\\n</answer>")
    0.75
    >>> ReasoningSteps().score("Step 1: add\\nStep 2: carry")
    0.6666666666666666
    >>> CodeFormat(language="python").score("<think>\\nplan\\n</think>\\n<answer>\\n```python\\nx = 1\\n```\\n</answer>")
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from ..registry import Component, Options, register


def score_format(
    component: Any, text: str, turns: Sequence[str] | None = None, meta: dict[str, Any] | None = None
) -> float:
    """A format component's score of one completion: the mean over its assistant messages when
    it is conversational with more than one (every turn must keep the format to pass a gate),
    else of ``text``. Peers (TRL, open-r1) score only the first message, so a later malformed
    turn goes unseen. A component with ``score_record(text, meta)`` also sees the record's meta."""
    meta = meta or {}
    one = component.score_record if hasattr(component, "score_record") else (lambda t, _m: component.score(t))
    if turns is not None and len(turns) > 1:
        return sum(one(t, meta) for t in turns) / len(turns)
    return one(text, meta)


# --------------------------------------------------------------------------- tag_count
class TagCountOptions(Options):
    think_tag: str = Field(default="think", min_length=1, description="name of the reasoning tag")
    answer_tag: str = Field(default="answer", min_length=1, description="name of the answer tag")


@register(
    "format",
    "tag_count",
    "Partial format credit: 0.25 for each of <think>\\n, \\n</think>\\n, \\n<answer>\\n, \\n</answer> present exactly once.",
    "open-r1 (Hugging Face, 2025)",
)
class TagCount(Component):
    """open-r1's ``tag_count_reward``: 0.25 for each of the four newline-delimited tags that
    occurs exactly once (a repeated tag earns nothing, so padding with tags does not pay).
    Order is not checked — pair it with ``think_answer`` (``answer_tag: true``) as a gate when
    order matters; on its own it is a shaping signal for learning the layout."""

    Options = TagCountOptions

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        t, a = self.options.think_tag, self.options.answer_tag
        self._parts = (f"<{t}>\n", f"\n</{t}>\n", f"\n<{a}>\n", f"\n</{a}>")

    def score(self, completion: str) -> float:
        return sum(0.25 for part in self._parts if completion.count(part) == 1)


# --------------------------------------------------------------------------- reasoning_steps
_STEP = re.compile(r"Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,", re.MULTILINE)


class ReasoningStepsOptions(Options):
    min_steps: int = Field(
        default=3, ge=1, description="markers for full credit (open-r1: 3); fewer give count/min_steps"
    )
    distinct: bool = Field(
        default=False,
        description="count each distinct marker text once ('Step 1:' repeated counts once); open-r1 counts every match",
    )


@register(
    "format",
    "reasoning_steps",
    "Step-by-step markers (Step n:, numbered lines, bullets, First/Second/Next/Finally,): min(1, count/min_steps).",
    "open-r1 (Hugging Face, 2025)",
)
class ReasoningSteps(Component):
    """open-r1's ``reasoning_steps_reward``: ``min(1, #markers / 3)``. Markers: ``Step n:``, a
    numbered line ``n.``, a line starting with ``-`` or ``*``, and ``First,``, ``Second,``,
    ``Next,``, ``Finally,``. Numbered lines are matched at the start of *every* line (open-r1's
    pattern lacks the multi-line flag, so it only sees one at the very start; its docstring
    says "at start of line"). Markers are cheap to emit: the policy can write "First, Second,
    Finally," with no reasoning behind them — use a small weight, and ``distinct: true`` to stop
    one repeated marker from counting many times."""

    Options = ReasoningStepsOptions

    def score(self, completion: str) -> float:
        found = _STEP.findall(completion)
        count = len(set(found)) if self.options.distinct else len(found)
        return min(1.0, count / self.options.min_steps)


# --------------------------------------------------------------------------- code_format
class CodeFormatOptions(Options):
    language: str = Field(
        default="python", min_length=1, description="required fence language; a record's meta.language overrides it"
    )
    think_tag: str = Field(default="think", min_length=1)
    answer_tag: str = Field(default="answer", min_length=1)

    @field_validator("language")
    @classmethod
    def _one_word(cls, value: str) -> str:
        if any(c.isspace() or c == "`" for c in value):
            raise ValueError(f"language {value!r} must be one word without spaces or backticks")
        return value


@register(
    "format",
    "code_format",
    "Code answer layout: <think>\\n...\\n</think>\\n<answer>\\n...```<language> code```...\\n</answer> (option language).",
    "open-r1 (Hugging Face, 2025)",
)
class CodeFormat(Component):
    """open-r1's ``code_format_reward``: the whole completion is ``<think>\\n…\\n</think>\\n<answer>\\n…
    ```<language> … ``` …\\n</answer>``, 1.0 or 0.0. Stricter than open-r1 in two ways that close
    holes: the fence's language must end at the end of its word (```` ```pythonic ```` is not
    python), and nothing may follow ``</answer>`` (open-r1's multi-line ``$`` accepts any text
    after a line break). The language is the record's ``meta.language`` when it has one (mixed
    languages in one run, as open-r1's ``language`` column), else the option."""

    Options = CodeFormatOptions

    def __init__(self, options: Options | None = None, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._patterns: dict[str, re.Pattern[str]] = {}

    def _pattern(self, language: str) -> re.Pattern[str]:
        if language not in self._patterns:
            t, a, lang = re.escape(self.options.think_tag), re.escape(self.options.answer_tag), re.escape(language)
            self._patterns[language] = re.compile(
                rf"<{t}>\n.*?\n</{t}>\n<{a}>\n.*?```{lang}(?![\w+#.-]).*?```.*?\n</{a}>", re.DOTALL
            )
        return self._patterns[language]

    def score(self, completion: str) -> float:
        return self.score_record(completion, {})

    def score_record(self, completion: str, meta: dict[str, Any]) -> float:
        language = meta.get("language") or self.options.language
        if not isinstance(language, str) or any(c.isspace() or c == "`" for c in language):
            return 0.0  # an unreadable per-record language: no format credit, never a crash
        return 1.0 if self._pattern(language).fullmatch(completion) else 0.0
