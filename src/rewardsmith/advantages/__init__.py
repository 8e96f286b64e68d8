"""Group advantage estimators; importing this registers them.

Registered names: ``grpo``, ``dr_grpo``, ``rloo``, ``batch_std`` (:mod:`.group`),
``reinforce_baseline`` (:mod:`.reinforce`), ``passk`` (:mod:`.passk`), ``canon`` (:mod:`.canon`),
``turn_grpo`` (:mod:`.turns`).
Dynamic sampling (dropping zero-variance groups) is in :mod:`.dynamic_sampling`.
"""

from . import canon, group, passk, reinforce, turns  # noqa: F401
from .base import AdvantageContext, AdvantageEstimator
from .dynamic_sampling import dynamic_sampling_report, keep_mask, zero_variance_groups

__all__ = ["AdvantageContext", "AdvantageEstimator", "dynamic_sampling_report", "keep_mask", "zero_variance_groups"]
