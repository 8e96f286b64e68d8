"""rewardsmith: reward design for RL post-training of LLMs.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "math", "shaping": [{"name": "repetition"}]})

The core needs only numpy and the verifiers' libraries; importing it never imports torch.
"""

from .batch import Batch
from .pipeline import Pipeline, Scores, load_spec
from .records import RecordError, read_records, write_records
from .registry import SpecError
from .spec import Spec, parse_spec
from .state import State, StateError

__version__ = "0.1.0"
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
