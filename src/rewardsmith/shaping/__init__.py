"""Reward shapers (length-aware shaping and friends); importing this registers them."""

from . import (  # noqa: F401
    curriculum,
    hapo,
    laser,
    length,
    limits,
    oni,
    process,
    repetition,
    reward_model,
    selective,
    self_signals,
    surrogate,
    turns,
)
from .base import BaseValues, Shaper, ShapingContext

__all__ = ["BaseValues", "Shaper", "ShapingContext"]
