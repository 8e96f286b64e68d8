"""Reward shapers (length-aware shaping and friends); importing this registers them."""

from . import repetition  # noqa: F401
from .base import BaseValues, Shaper, ShapingContext

__all__ = ["BaseValues", "Shaper", "ShapingContext"]
