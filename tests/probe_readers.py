"""Test-only answer readers for the probe tests, registered under test-only names.

``old_*``: read answers the old way — the last ``\\boxed{}`` (or tag, ``####``, ``Answer:``)
anywhere in the text, reasoning block included; exact match after deleting every
non-alphanumeric character; the last option letter anywhere; assert tests appended to the
program, passing on exit status 0; a format gate that only looks for ``</think>``. Every
exploit class must get through one of them.

``careful_*``: read answers the way issue 10 asks — only after the reasoning block, text that
does not render removed, several different answers a hedge, no meaning-changing deletions, the
option the text commits to. No exploit class may get through them (the probe's false-positive check).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

from rewardsmith.registry import Component, Options, entries, register
from rewardsmith.verifiers.base import OK, Job, Verdict, Verifier
from rewardsmith.verifiers.code import CodeVerifier

_BOX = re.compile(r"\\boxed\{([^{}]*)\}")
_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_HASH = re.compile(r"####\s*([^\n]+)")
_COLON = re.compile(r"^\s*Answer:\s*([^\n]+)", re.MULTILINE)
_PHRASE = re.compile(r"answer is\s+([^\n]+)", re.IGNORECASE)
_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-J])\)?(?![A-Za-z])")


def _old_extract(text: str) -> str | None:
    for pattern in (_BOX, _TAG, _HASH, _COLON):
        found = pattern.findall(text)
        if found:
            return found[-1].strip().rstrip(".")
    return None


def _value(text: str) -> Fraction | str:
    """A number (integers, decimals, a/b, integer powers a^b) as an exact Fraction, else the text."""
    t = text.replace(" ", "").strip("$")
    try:
        if re.fullmatch(r"-?\d+\^\{?\d+\}?", t):
            base, exp = t.replace("{", "").replace("}", "").split("^")
            return Fraction(int(base) ** int(exp)) if int(exp) < 64 else t
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return t


class _OldReader(Verifier):
    isolate = False

    def extract(self, completion: str) -> str | None:
        return _old_extract(completion)


class OldMath(_OldReader):
    def check(self, job: Job) -> Verdict:
        return Verdict(float(_value(job.prediction) == _value(str(job.reference))), OK)


class OldExact(_OldReader):
    def check(self, job: Job) -> Verdict:
        squash = lambda s: re.sub(r"[^0-9a-z]", "", s.casefold())  # noqa: E731
        return Verdict(float(squash(job.prediction) == squash(str(job.reference))), OK)


class ChoiceOptions(Options):
    letters: str = "ABCD"


class OldChoiceLast(Verifier):
    """The last option letter anywhere in the completion."""

    Options = ChoiceOptions
    isolate = False

    def extract(self, completion: str) -> str | None:
        found = _LETTER.findall(completion)
        return found[-1] if found else None

    def check(self, job: Job) -> Verdict:
        return Verdict(float(job.prediction == str(job.reference).strip("()")), OK)


class OldChoiceFirst(OldChoiceLast):
    """The first option letter of the visible text."""

    def extract(self, completion: str) -> str | None:
        found = _LETTER.findall(completion.rpartition("</think>")[2])
        return found[0] if found else None


class OldCode(CodeVerifier):
    """Runs the program with the assert tests appended, in one process: passes on exit status 0."""

    isolate = False

    def check(self, job: Job) -> Verdict:
        tests = (job.meta or {}).get("tests") or []
        passed = 0
        for test in tests:
            appended = isinstance(test, str)
            program, stdin = (job.prediction + "\n" + test, "") if appended else (job.prediction, test["input"])
            try:
                run = subprocess.run(
                    [sys.executable, "-I", "-c", program], input=stdin, capture_output=True, text=True, timeout=10
                )
            except subprocess.TimeoutExpired:
                continue
            expected = None if appended else test["output"].strip()
            passed += run.returncode == 0 and (expected is None or run.stdout.strip() == expected)
        return Verdict(passed / len(tests) if tests else float("nan"), OK)


class NeverCorrect(_OldReader):
    """Finds answers, accepts none (a reader pointed at the wrong field)."""

    def check(self, job: Job) -> Verdict:
        return Verdict(0.0, OK)


class OldThink(Component):
    """Passes when a ``</think>`` appears anywhere."""

    def score(self, completion: str) -> float:
        return float("</think>" in completion)


# --------------------------------------------------------------------------- careful readers
def visible_text(completion: str) -> str | None:
    """The text after the reasoning block, with what does not render removed; None when the
    reasoning block is never closed."""
    if "<think>" in completion and "</think>" not in completion.rpartition("<think>")[2]:
        return None
    text = completion.rpartition("</think>")[2]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"(?<!\\)%[^\n]*", "", text)
    return re.sub(r"\\phantom\{(?:[^{}]|\{[^{}]*\})*\}", "", text)


def _phrase_answer(found: str) -> str:
    wrapped = _BOX.match(found.strip()) or _TAG.match(found.strip())
    head = wrapped.group(1) if wrapped else re.split(r",\s|\.\s|\.$|;", found.strip())[0]
    return head.strip().rstrip(".")


def careful_answers(visible: str) -> list[str]:
    """Every answer the visible text states (boxes, tags, ####, Answer:, "the answer is")."""
    out = _BOX.findall(visible) + _TAG.findall(visible) + _HASH.findall(visible)
    out += [_phrase_answer(a) for a in _COLON.findall(visible) + _PHRASE.findall(visible)]
    return [a.strip().rstrip(".") for a in out if a.strip()]


class CarefulMath(Verifier):
    """One stated answer after the reasoning block, compared as an exact value; several different ones score 0."""

    isolate = False

    def extract(self, completion: str) -> str | None:
        visible = visible_text(completion)
        answers = careful_answers(visible) if visible is not None else []
        if not answers:
            return None
        values = {_value(a) for a in answers}
        return answers[-1] if len(values) == 1 else "\x00hedge"

    def check(self, job: Job) -> Verdict:
        return Verdict(
            float(job.prediction != "\x00hedge" and _value(job.prediction) == _value(str(job.reference))), OK
        )


class CarefulChoice(Verifier):
    """The option the visible text commits to: one letter stated by a marker (or a bare letter line);
    a negation, an "or", or two different letters score 0."""

    Options = ChoiceOptions
    isolate = False

    def extract(self, completion: str) -> str | None:
        visible = visible_text(completion)
        if visible is None:
            return None
        stated = careful_answers(visible) + re.findall(r"^\s*(\([A-J]\)|[A-J])\.?\s*$", visible, re.MULTILINE)
        if not stated:
            return None
        letters = set()
        for s in stated:
            m = re.fullmatch(r"\(?([A-J])\)?", s.strip())
            if not m:
                return "\x00hedge"
            letters.add(m.group(1))
        return letters.pop() if len(letters) == 1 else "\x00hedge"

    def check(self, job: Job) -> Verdict:
        return Verdict(float(job.prediction == str(job.reference).strip("()")), OK)


class CarefulThink(Component):
    """Exactly one non-empty reasoning block, first, with something after it."""

    def score(self, completion: str) -> float:
        if completion.count("<think>") != 1 or completion.count("</think>") != 1:
            return 0.0
        head, _, rest = completion.partition("<think>")
        thinking, _, after = rest.partition("</think>")
        return float(not head.strip() and bool(thinking.strip()) and bool(after.strip()))


_TEST_COMPONENTS = {
    ("verifier", "old_math"): OldMath,
    ("verifier", "old_exact"): OldExact,
    ("verifier", "old_choice_last"): OldChoiceLast,
    ("verifier", "old_choice_first"): OldChoiceFirst,
    ("verifier", "old_code"): OldCode,
    ("verifier", "never_correct"): NeverCorrect,
    ("format", "old_think"): OldThink,
    ("verifier", "careful_math"): CarefulMath,
    ("verifier", "careful_choice"): CarefulChoice,
    ("format", "careful_think"): CarefulThink,
}


@contextmanager
def readers_registered() -> Iterator[None]:
    """The readers above under their test-only names, removed again on exit (other tests list the registry)."""
    from rewardsmith import registry

    for (kind, name), cls in _TEST_COMPONENTS.items():
        if name not in {e.name for e in entries(kind)}:
            register(kind, name, f"test-only: {cls.__doc__ or name}".splitlines()[0])(cls)
    try:
        yield
    finally:
        for kind, name in _TEST_COMPONENTS:
            registry._REGISTRY[kind].pop(name, None)
