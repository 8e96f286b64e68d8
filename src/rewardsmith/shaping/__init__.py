"""Reward shapers (length-aware shaping and friends); importing this registers them."""

from . import curriculum, hapo, laser, length, limits, repetition, reward_model, selective, surrogate  # noqa: F401
from .base import BaseValues, Shaper, ShapingContext

__all__ = ["BaseValues", "Shaper", "ShapingContext"]
