"""Verifiers (correctness) and format rewards; importing this registers them."""

from . import choice, exact, format, math, reasoning_gym  # noqa: F401
from .base import Job, Verdict, Verifier

__all__ = ["Job", "Verdict", "Verifier"]
