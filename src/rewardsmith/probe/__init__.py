"""``rewardsmith probe``: exploits built from a reward spec's own answer-reading rules and from the
user's rollouts, scored next to honest answers inside GRPO groups (see docs/probe.md).

    >>> from rewardsmith.probe import probe
    >>> report = probe({"verifier": "exact", "length_unit": "words"})   # doctest: +SKIP
    >>> sorted(report.classes_found())                                 # doctest: +SKIP
"""

from ..shaping.dominance import Dominance, wrong_beats_correct
from .exploits import CLASSES, Exploit, Reading, Task, generate
from .run import Finding, ProbeReport, probe
from .trajectories import TRAJECTORY_CLASSES

__all__ = [
    "CLASSES",
    "Dominance",
    "Exploit",
    "Finding",
    "ProbeReport",
    "Reading",
    "TRAJECTORY_CLASSES",
    "Task",
    "generate",
    "probe",
    "wrong_beats_correct",
]
