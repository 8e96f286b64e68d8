"""Where an answer is read: the rules shared by the verifiers (cheap; runs in the calling process).

Reading a completion, in order:

1. **Reasoning is never graded** (:func:`answer_region`). Only the text after the last closing
   delimiter (``</think>`` by default; ``reasoning_delimiters`` changes it, like TRL's option of
   that name) is read. A block that is opened and never closed (a truncated rollout) leaves no
   answer. A closing delimiter with no opening one marks everything before it as reasoning
   (Qwen3 and DeepSeek-R1 chat templates put ``<think>`` in the prompt).
2. **Text that does not render is not an answer** (:func:`visible_text`): HTML comments,
   ``\\iffalse…\\fi``, ``\\phantom``/``\\hphantom``/``\\vphantom`` and LaTeX ``%`` comments (to the
   end of the line; a ``%`` right after a number, as in ``20%`` or ``20 %``, is a percent sign, and
   so is ``\\%``) are
   removed before any rule looks.
3. **Every final answer is collected** (:func:`find_answers`), by the rules named in ``order``:
   ``boxed`` (``\\boxed{…}``/``\\fbox{…}``, braces balanced, outermost only), ``answer_tag``
   (``<answer>…</answer>``), ``hash`` (GSM8K's ``#### 42``), ``answer_colon`` (``Answer: 42`` where
   a sentence starts, or ``final answer: 42``; at most 100 characters) and ``answer_is`` (“the
   answer is 42”, “the final answer is $x$”; the value must start like a number or formula,
   or be one word ending the sentence). A value runs to the end of its sentence (or of its
   ``$…$``); a value that contains a box is read through that box. The verifier decides what
   several *different* answers mean (a hedge, or the parts of a set).

:func:`extract_answer` keeps the old single-answer view: the last answer of the first rule
in ``order`` that finds one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

EXTRACTION_RULES = ("boxed", "answer_tag", "hash", "answer_colon")  # marker rules (``extract_answer``'s default)
READING_RULES = (*EXTRACTION_RULES, "answer_is")  # the verifiers' default: markers and "the answer is"
DEFAULT_REASONING = ("<think>", "</think>")
_MAX_ANSWER_CHARS = 2000  # longer "answers" are not answers; keeps pathological input bounded
_MAX_COLON_CHARS = 100  # an "Answer:" line longer than this is prose, not an answer

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_HASH = re.compile(r"####[ \t]*([^\n]+)")
# "Answer: X" only where a sentence starts (line start, after . ! ? or a closing } $ ] >) or as
# "final answer: X", so prose such as "we need to answer: <question>" is never the answer.
_ANSWER_COLON = re.compile(
    r"(?:(?:^|[.!?}$\]>])[ \t*#>-]*(?:the\s+)?(?:final\s+)?answer|final\s+answer)"
    r"(?:\s+is)?[ \t*]*[:：][ \t*]*([^\n]+)",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_IS = re.compile(
    r"\b(?:the\s+)?(?:final\s+|correct\s+)?answer\s+(?:is|would\s+be|will\s+be|should\s+be|must\s+be)\b"
    r"(?![ \t]*[:：])[ \t*]*([^\n]+)",
    re.IGNORECASE,
)
_LEADING_PHRASE = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+)?answer\s+is\s*:?\s*", re.IGNORECASE)
# "the answer is" in prose: the value must look like an answer, not like "the answer is clear".
_VALUE_START = re.compile(r"[-+−$\\(\[{\d.]|[A-Za-z](?![A-Za-z])|[A-Za-z][\w-]*[ \t]*(?:[.!,;]|$)")
_NOT_ANSWERS = frozenset(
    {
        "correct",
        "right",
        "wrong",
        "incorrect",
        "clear",
        "obvious",
        "unclear",
        "above",
        "below",
        "simple",
        "easy",
        "not",
        "no",
        "yes",
        "that",
        "this",
        "it",
        "as",
        "therefore",
        "thus",
        "so",
    }
)
_SENTENCE_END = re.compile(
    r"[.!?;](?=\s|$)|,\s+(?=(?!or\b)[A-Za-z]{2})|\s+(?:since|because|but|which|as|not|so|and\s+not)\s"
)
_MATH_OPEN = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}

# A box the text itself takes back ("\boxed{42} is wrong", "is not \boxed{42}") is not an answer.
_RETRACTED_AFTER = re.compile(
    r"\s*(?:\$|\\\)|\\\])?\s*,?\s*(?:which\s+|that\s+)?(?:is|was|seems|looks)\s+(?:not\s+(?:correct|right|the\s+answer)|wrong|"
    r"incorrect|false|a\s+mistake)\b",
    re.IGNORECASE,
)
_NEGATED_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever)(?:\s+(?:equal\s+to|be))?[\s$]*(?:\\\(|\\\[)?[\s$]*$", re.IGNORECASE
)
_NEGATED_VALUE = re.compile(r"(?:\bnot|n't)(?:\s+(?:equal\s+to|be))?\s+(?:\$[^$]*\$|\S+)", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_IFFALSE = re.compile(r"\\iffalse\b.*?(?:\\fi\b|\Z)", re.DOTALL)
_PHANTOM = re.compile(r"\\[hv]?phantom\s*(?=\{)")
_PERCENT_AFTER_NUMBER = re.compile(r"\d[ \t}]*$")


def check_delimiters(v: tuple[str, str] | None) -> tuple[str, str] | None:
    if v is not None and (not v[0].strip() or not v[1].strip() or v[0] == v[1]):
        raise ValueError("reasoning_delimiters must be two different non-empty tags, e.g. ['<think>', '</think>']")
    return v


# The ``reasoning_delimiters`` option of the verifiers and of ``think_answer``.
Delimiters = Annotated[tuple[str, str] | None, AfterValidator(check_delimiters)]


def reasoning_delimiters_field() -> Any:
    return Field(
        default=DEFAULT_REASONING,
        description="opening and closing tag of the reasoning block, never graded; null: no reasoning block",
    )


def answer_region(text: str, delimiters: Sequence[str] | None = DEFAULT_REASONING) -> str | None:
    """The text after the reasoning block; None when a reasoning block is opened and never closed."""
    if not delimiters:
        return text
    opening, closing = delimiters
    end = text.rfind(closing)
    if end < 0:
        return None if opening in text else text
    after = text[end + len(closing) :]
    return None if opening in after else after


def _skip_braced(text: str, i: int) -> int:
    """Index just after the balanced ``{...}`` group starting at ``text[i] == "{"``; -1 when it never closes."""
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _drop_latex_comments(text: str) -> str:
    out, pos = [], 0
    for m in re.finditer(r"%", text):
        i = m.start()
        if i < pos:
            continue
        backslashes = len(text[:i]) - len(text[:i].rstrip("\\"))
        if backslashes % 2 or _PERCENT_AFTER_NUMBER.search(text[max(0, i - 20) : i]):
            continue  # "\%" or "20 %": a percent sign, not a comment
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        out.append(text[pos:i])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def visible_text(text: str) -> str:
    """``text`` without what a LaTeX or Markdown reader never sees (comments, ``\\iffalse``, phantoms)."""
    t = _IFFALSE.sub("", _HTML_COMMENT.sub("", text))
    if "phantom" in t:
        parts, pos = [], 0
        for m in _PHANTOM.finditer(t):
            if m.start() < pos:
                continue
            parts.append(t[pos : m.start()])
            end = _skip_braced(t, m.end())
            pos = len(t) if end < 0 else end
        t = "".join(parts) + t[pos:]
    return _drop_latex_comments(t) if "%" in t else t


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, content) of each outermost ``\\boxed``/``\\fbox``; content None when unbalanced."""
    found, pos = [], 0
    for m in re.finditer(r"\\(?:boxed|fbox)(?![A-Za-z])", text):
        if m.start() < pos:
            continue  # inside an earlier box
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            end = _skip_braced(text, i)
            found.append((m.start(), len(text) if end < 0 else end, None if end < 0 else text[i + 1 : end - 1]))
            pos = len(text) if end < 0 else end
        else:  # "\boxed 5" form: up to whitespace or "$"
            v = re.match(r"[^\s$]+", text[i:])
            end = i + (v.end() if v else 0)
            found.append((m.start(), end, v.group(0) if v else None))
            pos = end
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, ``\\boxed 5``), braces balanced."""
    boxes = _boxes(text)
    return boxes[-1][2] if boxes else None


def retracted(text: str, start: int, end: int) -> bool:
    """True when the text takes back the answer at ``text[start:end]`` ("… is wrong", "not …")."""
    return bool(_RETRACTED_AFTER.match(text, end) or _NEGATED_BEFORE.search(text[max(0, start - 30) : start]))


def unmarked(text: str) -> str:
    """``text`` without its boxes (none of them an answer: unbalanced or taken back) and without the
    values it negates ("not 42", "isn't $x$"): what a reader without markers may look at."""
    parts, pos = [], 0
    for start, end, _ in _boxes(text):
        parts.append(text[pos:start])
        pos = end
    return _NEGATED_VALUE.sub(" ", "".join(parts) + text[pos:])


def read_value(text: str) -> str:
    """The answer at the start of ``text``: a whole ``$…$``/``\\(…\\)``/``\\[…\\]`` group, else up to the
    sentence's end."""
    t = _LEADING_PHRASE.sub("", text.strip().lstrip("*: \t"))
    for opening, closing in _MATH_OPEN.items():
        if t.startswith(opening):
            end = t.find(closing, len(opening))
            if end >= 0:
                return t[len(opening) : end]
            break
    m = _SENTENCE_END.search(t)
    return t[: m.start()] if m else t


@dataclass(frozen=True)
class Answer:
    """One final answer found in a completion."""

    rule: str
    text: str
    start: int


def _spans(pattern: re.Pattern[str], rule: str, text: str, value: Callable[[str], str | None]) -> list[Answer]:
    out = []
    for m in pattern.finditer(text):
        v = value(m.group(1))
        if v is not None:
            out.append(Answer(rule, v, m.start(1)))
    return out


def _colon_value(raw: str) -> str | None:
    return read_value(raw) if len(raw.strip()) <= _MAX_COLON_CHARS else None


def _is_value(raw: str) -> str | None:
    t = raw.strip().lstrip("*")
    if not _VALUE_START.match(t):
        return None
    v = read_value(t)
    return None if v.strip().strip("*.").casefold() in _NOT_ANSWERS else v


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip().removeprefix('\\"').removesuffix('\\"').strip().strip('*$"').strip().rstrip(".").strip()
    return v if v and len(v) <= _MAX_ANSWER_CHARS else None


def find_answers(text: str, order: Sequence[str] = READING_RULES) -> list[Answer]:
    """Every final answer in ``text`` (already the answer region, comments removed), in reading order.

    A tag/colon/phrase answer that holds a box counts as that box (the box is collected itself).
    """
    found: list[Answer] = []
    boxes = _boxes(text) if "boxed" in order else []
    for start, end, content in boxes:
        if content is not None and not retracted(text, start, end):
            found.append(Answer("boxed", content, start))
    others: list[Answer] = []
    if "answer_tag" in order:
        others += _spans(_ANSWER_TAG, "answer_tag", text, lambda s: s)
    if "hash" in order:
        others += _spans(_HASH, "hash", text, read_value)
    if "answer_colon" in order:
        others += _spans(_ANSWER_COLON, "answer_colon", text, _colon_value)
    if "answer_is" in order:
        others += _spans(_ANSWER_IS, "answer_is", text, _is_value)
    for a in others:
        if "\\boxed" in a.text or "\\fbox" in a.text:
            if not boxes:  # boxes not among the rules: read the box inside the value
                inner = last_boxed(a.text)
                if inner is not None:
                    found.append(Answer(a.rule, inner, a.start))
            continue
        found.append(a)
    cleaned = [Answer(a.rule, c, a.start) for a in found if (c := _clean(a.text)) is not None]
    cleaned.sort(key=lambda a: a.start)
    # "Answer: the final answer is 5" is read by two rules at overlapping places: keep one per value and place.
    out: list[Answer] = []
    for a in cleaned:
        if out and out[-1].text == a.text and a.start - out[-1].start < 40:
            continue
        out.append(a)
    return out


def read_answers(
    completion: str, order: Sequence[str] = READING_RULES, delimiters: Sequence[str] | None = DEFAULT_REASONING
) -> list[Answer] | None:
    """The final answers of ``completion`` after the reasoning block; None when the reasoning block never closes."""
    region = answer_region(completion, delimiters)
    if region is None:
        return None
    return find_answers(visible_text(region), order)


def distinct(answers: Sequence[Answer]) -> list[str]:
    """The different answer texts, in order of first appearance (spacing ignored)."""
    seen: dict[str, str] = {}
    for a in answers:
        seen.setdefault(re.sub(r"\s+|\\[,;:! ]|\$", "", a.text), a.text)
    return list(seen.values())


def extract_answer(text: str, order: Sequence[str] = EXTRACTION_RULES) -> str | None:
    """The last answer of the first rule in ``order`` that finds one (no reasoning-block handling)."""
    answers = find_answers(text, order)
    for name in order:
        mine = [a for a in answers if a.rule == name]
        if mine:
            return mine[-1].text
    return None
