"""Sentence and sub-sentence segments of a response, for fine-grained (segment-level) rewards.

Fine-Grained Human Feedback (Wu et al. 2023, §2.2 and allenai/FineGrainedRLHF
``fgrlhf/reward_utils.py``) rewards a response per segment: relevance per sub-sentence, factuality
per sentence, each reward placed at the segment's last token. Segments here are character spans
``(start, end)`` whose ``end`` excludes trailing whitespace, so ``text[:end]`` is the text up to the
segment's last character.

- **sentences**: the authors use spaCy's ``en_core_web_sm`` parser, a model we cannot ship; here a
  sentence ends after a run of ``.``, ``!`` or ``?`` (with closing quotes/brackets) followed by
  whitespace or the end of the text, and at every line break. Abbreviations ("e.g. x") therefore
  end a sentence where spaCy might not; decimals ("3.5") do not. Whitespace-only sentences are
  dropped, as the authors drop empty ``doc.sents``.
- **sub-sentences**: the authors' rule, re-implemented: within a sentence, split on whitespace into
  words; a sub-sentence may start after a word ending in ``,;!?`` when more than
  ``MIN_SUBSENTENCE_WORDS`` (5) words follow it; a sub-sentence shorter than 5 words is merged into
  the one before it (the first sub-sentence of a sentence, when short, absorbs the next instead).

Every sentence end is also a sub-sentence end, so mixing both granularities partitions the text by
the sub-sentences.
"""

from __future__ import annotations

import re

MIN_SUBSENTENCE_WORDS = 5  # FineGrainedRLHF's ``min_subsent_words``
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")
_SUBSENTENCE_END = re.compile(r"[,;!?]$")
Span = tuple[int, int]


def _trimmed(text: str, start: int, end: int) -> Span | None:
    """``(start, end)`` without the whitespace at either side; None when only whitespace is left."""
    chunk = text[start:end]
    if not chunk.strip():
        return None
    return start + len(chunk) - len(chunk.lstrip()), end - (len(chunk) - len(chunk.rstrip()))


def sentences(text: str) -> list[Span]:
    """The sentences of ``text`` as ``(start, end)`` spans (empty for an empty or blank text)."""
    cuts = [0, *(m.end() for m in _SENTENCE_END.finditer(text)), len(text)]
    spans = (_trimmed(text, a, b) for a, b in zip(cuts, cuts[1:]))
    return [s for s in spans if s is not None]


def _subsentence_starts(words: list[str]) -> list[bool]:
    """FineGrainedRLHF's ``get_sub_sentence_starts``: which words start a sub-sentence."""
    starts = [True]
    current = 0  # index of the word that starts the current sub-sentence
    for i in range(1, len(words)):
        may_split = _SUBSENTENCE_END.search(words[i - 1]) and i + MIN_SUBSENTENCE_WORDS < len(words)
        if not may_split:
            starts.append(False)
        elif i - current >= MIN_SUBSENTENCE_WORDS:
            starts.append(True)
            current = i
        elif current > 0:  # the current sub-sentence is short: merge it into the previous one
            starts[current] = False
            starts.append(True)
            current = i
        else:  # the sentence's first sub-sentence is short: it runs on
            starts.append(False)
    return starts


def subsentences(text: str) -> list[Span]:
    """The sub-sentences of ``text`` (each within one sentence) as ``(start, end)`` spans."""
    out: list[Span] = []
    for s_start, s_end in sentences(text):
        words = list(re.finditer(r"\S+", text[s_start:s_end]))
        starts = [
            s_start + w.start() for w, first in zip(words, _subsentence_starts([w.group() for w in words])) if first
        ]
        bounds = [*starts, s_end]
        out.extend(_trimmed(text, a, b) for a, b in zip(bounds, bounds[1:]))  # type: ignore[misc]
    return out


def segment(text: str, granularity: str) -> list[Span]:
    """Spans of ``text`` at ``granularity`` (``sentence`` or ``subsentence``)."""
    return sentences(text) if granularity == "sentence" else subsentences(text)
