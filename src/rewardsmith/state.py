"""Explicit, serialisable pipeline state (HAPO history, LASER-D targets, running stats, step).

Stateful components keep everything they remember in ``State.components[key]`` (a JSON-able
dict), never in module globals. ``State.save`` writes JSON atomically (write-then-rename);
``State.load`` refuses a corrupt file or one written for a different spec.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write

STATE_VERSION = 1


class StateError(ValueError):
    """A state file is corrupt or belongs to another spec."""


@dataclass
class State:
    spec_fingerprint: str = ""
    step: int = 0  # the step the next batch gets when neither records nor caller give one
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_component(self, key: str) -> dict[str, Any]:
        """The mutable dict a component keeps its state in (created empty on first use)."""
        return self.components.setdefault(key, {})

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "spec_fingerprint": self.spec_fingerprint, "step": self.step, "components": self.components}

    @classmethod
    def from_json(cls, data: Any, where: str = "state") -> "State":
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("components"), dict):
            raise StateError(f"{where}: not a rewardsmith state file (version {STATE_VERSION} expected)")
        return cls(spec_fingerprint=str(data.get("spec_fingerprint", "")), step=int(data.get("step", 0)), components=data["components"])

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as fh:
            json.dump(self.to_json(), fh, allow_nan=False)

    @classmethod
    def load(cls, path: str | os.PathLike, expected_fingerprint: str | None = None) -> "State":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(f"{path}: corrupt state file ({exc}); move it away to start fresh") from None
        state = cls.from_json(data, where=str(path))
        if expected_fingerprint is not None and state.spec_fingerprint != expected_fingerprint:
            raise StateError(
                f"{path}: state was written for a different spec (fingerprint {state.spec_fingerprint} != "
                f"{expected_fingerprint}); point 'state:' elsewhere or remove the file"
            )
        return state
