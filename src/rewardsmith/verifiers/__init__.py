"""Verifiers (correctness) and format rewards; importing this registers them."""

from . import (
    bmas,
    box,
    choice,
    code,
    exact,
    format,
    format_rewards,
    math,
    reasoning_gym,
    reward_model,
    rubric,
    sql,
    tool_call,
)  # noqa: F401
from .base import Job, Verdict, Verifier

__all__ = ["Job", "Verdict", "Verifier"]
