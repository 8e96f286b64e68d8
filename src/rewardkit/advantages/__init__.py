"""Group advantage estimators; importing this registers them."""

from .base import AdvantageContext, AdvantageEstimator

__all__ = ["AdvantageContext", "AdvantageEstimator"]
