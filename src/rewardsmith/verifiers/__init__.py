"""Verifiers (correctness) and format rewards; importing this registers them."""

from . import bmas, box, choice, code, exact, format, format_rewards, judge, math, reasoning_gym, rubric, sql, tool_call  # noqa: F401
from .base import Job, Verdict, Verifier

__all__ = ["Job", "Verdict", "Verifier"]
