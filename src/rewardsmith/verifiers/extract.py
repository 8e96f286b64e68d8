"""Answer extraction rules shared by the verifiers (cheap; runs in the calling process).

Rules, each returning the *last* occurrence in the completion:
``boxed`` (``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces), ``answer_tag``
(``<answer>...</answer>``), ``hash`` (GSM8K's ``#### 42``), ``answer_colon`` (``Answer: 42`` at the start of a line, or
``final answer: 42`` anywhere, where a sentence starts; at most 100 characters).
``extract_answer`` tries the rules in the order given and returns the first match.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

EXTRACTION_RULES = ("boxed", "answer_tag", "hash", "answer_colon")
_MAX_ANSWER_CHARS = 2000  # longer "answers" are not answers; keeps pathological input bounded

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]+)")
# "Answer: X" only where a sentence starts (line start, after </think> or . ! ?) or as
# "final answer: X", so prose such as "we need to answer: <question>" is never the answer.
_ANSWER_COLON = re.compile(r"(?:(?:^|</think>|[.!?])[ \t*#>-]*(?:the\s+)?(?:final\s+)?answer|final\s+answer)(?:\s+is)?[\s*]*[:：][\s*]*([^\n]+)", re.IGNORECASE | re.MULTILINE)
_MAX_COLON_CHARS = 100  # an "Answer:" line longer than this is prose, not an answer


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, ``\\boxed 5``), braces balanced."""
    best = None
    for cmd in ("\\boxed", "\\fbox"):
        pos = text.rfind(cmd)
        if pos >= 0 and (best is None or pos > best[0]):
            best = (pos, cmd)
    if best is None:
        return None
    i = best[0] + len(best[1])
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] != "{":  # "\boxed 5" form: up to whitespace or "$"
        m = re.match(r"[^\s$]+", text[i:])
        return m.group(0) if m else None
    depth, start = 0, i + 1
    for j in range(i, n):
        c = text[j]
        if c == "\\":
            continue
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start:j]
    return None  # unbalanced: no answer


def _last(pattern: re.Pattern[str]) -> Callable[[str], str | None]:
    def rule(text: str) -> str | None:
        last = None
        for last in pattern.finditer(text):
            pass
        return last.group(1) if last else None

    return rule


def _short(found: str | None) -> str | None:
    return found if found is not None and len(found.strip()) <= _MAX_COLON_CHARS else None


_RULES: dict[str, Callable[[str], str | None]] = {
    "boxed": last_boxed,
    "answer_tag": _last(_ANSWER_TAG),
    "hash": _last(_HASH),
    "answer_colon": lambda text: _short(_last(_ANSWER_COLON)(text)),
}


def extract_answer(text: str, order: Sequence[str] = EXTRACTION_RULES) -> str | None:
    """The answer by the first rule in ``order`` that matches, stripped; None if none does."""
    for name in order:
        found = _RULES[name](text)
        if found is not None:
            found = found.strip().strip("*$").strip()
            if found and len(found) <= _MAX_ANSWER_CHARS:
                return found
    return None
