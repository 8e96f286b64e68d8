"""Verifiers (correctness) and format rewards.

Importing this package loads none of them: a verification worker imports only the verifier it
runs (``rewardsmith.verifiers.math`` alone, not the code sandbox, the judge or numpy). The
catalogue (:func:`rewardsmith.components.load_builtins`) calls :func:`load_builtins`, which
imports every module and so runs their registrations.
"""

import importlib

from .base import Job, Verdict, Verifier

BUILTIN_MODULES = (
    "bmas",
    "box",
    "choice",
    "code",
    "exact",
    "format",
    "format_rewards",
    "judge",
    "math",
    "per_turn",
    "reasoning_gym",
    "relevance",
    "reward_model",
    "rubric",
    "sql",
    "tool_call",
)


def load_builtins() -> None:
    """Import every built-in verifier module (registering its components)."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{name}")


__all__ = ["Job", "Verdict", "Verifier", "load_builtins"]
