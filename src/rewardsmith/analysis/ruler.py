"""Target-length adherence: Ruler's Precise Match and Flexible Match (Li et al., 2024, "Ruler: A
Model-Agnostic Method to Control Generated Length"; windows and levels as in
Geaming2002/Ruler src/utils/config.py).

Length = number of ``\\w+`` tokens (words). For each target the output is in the PM window or
the FM window (lo, hi]; PM and FM are the percentages in the window, per target, per level
(pooled over the level's targets) and over all outputs.

Rows: ``completion`` (or ``output``) text and the target as ``target``, ``TargetLength`` or
``meta.target``: one of 10, 30, 50, 80, 150, 300, 500, 700 or ">800".

    >>> word_count("Hello, world! It's 3pm.")   # Hello, world, It, s, 3pm
    5
    >>> in_window(20, PM_WINDOWS["10"]), in_window(0, PM_WINDOWS["10"]), in_window(801, PM_WINDOWS[">800"])
    (True, False, True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..records import RecordError, completion_text

_WORD = re.compile(r"\w+")
INF = math.inf
PM_WINDOWS: dict[str, tuple[float, float]] = {
    "10": (0, 20),
    "30": (20, 40),
    "50": (40, 60),
    "80": (70, 90),
    "150": (130, 170),
    "300": (280, 320),
    "500": (450, 550),
    "700": (630, 770),
    ">800": (800, INF),
}
FM_WINDOWS: dict[str, tuple[float, float]] = {
    "10": (0, 20),
    "30": (20, 40),
    "50": (40, 60),
    "80": (60, 100),
    "150": (100, 200),
    "300": (200, 400),
    "500": (400, 600),
    "700": (600, 800),
    ">800": (800, INF),
}
LEVELS: dict[str, tuple[str, ...]] = {"0": ("10", "30", "50", "80"), "1": ("150", "300", "500"), "2": ("700", ">800")}
_LEVEL_OF = {t: level for level, targets in LEVELS.items() for t in targets}


def word_count(text: str) -> int:
    """Number of ``\\w+`` tokens, Ruler's length measure."""
    return len(_WORD.findall(text))


def in_window(n_words: int, window: tuple[float, float]) -> bool:
    """Whether ``n_words`` lies in the half-open window (lo, hi]."""
    lo, hi = window
    return lo < n_words <= hi


def normalise_target(value: Any) -> str:
    """A target as Ruler's key ("10" … "700", ">800"); an error names the allowed ones."""
    key = str(value).strip().replace(" ", "")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == int(value):
        key = str(int(value))
    if key not in PM_WINDOWS:
        raise RecordError(f"unknown Ruler target {value!r}; allowed: {', '.join(PM_WINDOWS)}")
    return key


def _target_of(row: Mapping[str, Any]) -> Any:
    for key in ("target", "TargetLength"):
        if row.get(key) is not None:
            return row[key]
    meta = row.get("meta") or {}
    if meta.get("target") is not None:
        return meta["target"]
    raise RecordError("missing the target length ('target', 'TargetLength' or 'meta.target')")


def _rates(pm_in: int, fm_in: int, n: int) -> dict[str, Any]:
    return {"n": n, "PM": 100.0 * pm_in / n if n else None, "FM": 100.0 * fm_in / n if n else None}


def ruler_scores(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """PM and FM (percent) per target, per level and over all rows, with mean word counts."""
    counts: dict[str, list[int]] = {t: [0, 0, 0, 0] for t in PM_WINDOWS}  # pm_in, fm_in, n, words
    for i, row in enumerate(rows):
        try:
            target = normalise_target(_target_of(row))
            text = row.get("completion", row.get("output"))
            if text is None:
                raise RecordError("missing 'completion' (or 'output')")
            words = word_count(completion_text(text))
        except RecordError as exc:
            raise RecordError(f"row {i}: {exc}") from None
        c = counts[target]
        c[0] += in_window(words, PM_WINDOWS[target])
        c[1] += in_window(words, FM_WINDOWS[target])
        c[2] += 1
        c[3] += words
    targets = {
        t: {**_rates(c[0], c[1], c[2]), "mean_words": c[3] / c[2], "level": _LEVEL_OF[t]}
        for t, c in counts.items()
        if c[2]
    }
    levels = {}
    for level, members in LEVELS.items():
        cs = [counts[t] for t in members if counts[t][2]]
        if cs:
            levels[level] = _rates(sum(c[0] for c in cs), sum(c[1] for c in cs), sum(c[2] for c in cs))
    total = [sum(c[k] for c in counts.values()) for k in range(3)]
    return {"all": _rates(*total), "levels": levels, "targets": targets}
