"""Reward shapers (length-aware shaping and friends); importing this registers them."""

from . import (  # noqa: F401
    curriculum,
    hapo,
    laser,
    length,
    limits,
    process,
    repetition,
    reward_model,
    selective,
    self_signals,
    surrogate,
)
from .base import BaseValues, Shaper, ShapingContext

__all__ = ["BaseValues", "Shaper", "ShapingContext"]
