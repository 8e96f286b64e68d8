"""Verifiers (correctness) and format rewards; importing this registers them."""

# ruff: noqa: F401  (the verifier modules are imported for their registrations)
from . import (
    bmas,
    box,
    choice,
    code,
    exact,
    format,
    format_rewards,
    judge,
    math,
    per_turn,
    reasoning_gym,
    relevance,
    reward_model,
    rubric,
    sql,
    tool_call,
)
from .base import Job, Verdict, Verifier

__all__ = ["Job", "Verdict", "Verifier"]
