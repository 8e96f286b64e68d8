"""rewardsmith: reward design for RL post-training of LLMs.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "math", "shaping": [{"name": "repetition"}]})

The core needs only numpy and the verifiers' libraries; importing it never imports torch. The
names below load on first use, so a verification worker (which imports only the engine and its
verifier) and ``rewardsmith --help`` do not pay for the pipeline, the shapers and the estimators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Batch": ".batch",
    "Pipeline": ".pipeline",
    "Scores": ".pipeline",
    "load_spec": ".pipeline",
    "RecordError": ".records",
    "read_records": ".records",
    "write_records": ".records",
    "SpecError": ".registry",
    "Spec": ".spec",
    "parse_spec": ".spec",
    "State": ".state",
    "StateError": ".state",
}
__all__ = [
    "Batch",
    "Pipeline",
    "RecordError",
    "Scores",
    "Spec",
    "SpecError",
    "State",
    "StateError",
    "load_spec",
    "parse_spec",
    "read_records",
    "write_records",
]

if TYPE_CHECKING:
    from .batch import Batch
    from .pipeline import Pipeline, Scores, load_spec
    from .records import RecordError, read_records, write_records
    from .registry import SpecError
    from .spec import Spec, parse_spec
    from .state import State, StateError


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardsmith' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
