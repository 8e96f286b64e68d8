"""Explicit, serialisable pipeline state (HAPO history, LASER-D targets, running stats, step).

Stateful components keep everything they remember in ``State.components[key]`` (a JSON-able
dict), never in module globals. ``State.save`` writes JSON atomically (write-then-rename);
``State.load`` refuses a corrupt file, one written for a different spec, and one whose values are
out of schema or range (each stateful shaper checks its own part with ``check_state``): a state
file is data a run trusts, so a wrong one is a :class:`StateError` naming the file, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import commit_files, stage_file

STATE_VERSION = 1
MAX_STEP = 10**12  # a training step beyond this is a corrupt or hostile value, not a run


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
        return {
            "version": STATE_VERSION,
            "spec_fingerprint": self.spec_fingerprint,
            "step": self.step,
            "components": self.components,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "state") -> State:
        """A state from its JSON form, its shape and ranges checked (per-component checks: ``check_components``)."""
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or not isinstance(data.get("components"), dict)
        ):
            raise StateError(f"{where}: not a rewardsmith state file (version {STATE_VERSION} expected)")
        unknown = sorted(set(data) - {"version", "spec_fingerprint", "step", "components"})
        if unknown:
            raise StateError(f"{where}: unknown keys {unknown}")
        fingerprint = data.get("spec_fingerprint", "")
        if not isinstance(fingerprint, str):
            raise StateError(f"{where}: 'spec_fingerprint' must be a string, got {type(fingerprint).__name__}")
        try:
            step = check_int(data.get("step", 0), "step", 0, MAX_STEP)
            for key, value in data["components"].items():
                if not isinstance(value, dict):
                    raise ValueError(f"components.{key}: must be an object, got {type(value).__name__}")
                _check_json(value, f"components.{key}")
        except ValueError as exc:
            raise StateError(f"{where}: {exc}") from None
        return cls(spec_fingerprint=fingerprint, step=step, components=data["components"])

    def check_components(self, checks: dict[str, Callable[[dict[str, Any]], None]], where: str = "state") -> None:
        """Run each component's ``check_state`` on its part; a ValueError/TypeError becomes a StateError."""
        for key, check in checks.items():
            if key in self.components:
                try:
                    check(self.components[key])
                except (ValueError, TypeError) as exc:
                    raise StateError(f"{where}: components.{key}: {exc}; move the file away to start fresh") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the state to ``path`` atomically (write-then-rename)."""
        commit_files([self.stage(path)])

    def stage(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write the state beside ``path`` without replacing it: ``(temporary, path)`` for :func:`commit_files`."""
        text = json.dumps(self.to_json(), allow_nan=False)
        return stage_file(path, lambda fh: fh.write(text.encode("utf-8"))), Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, expected_fingerprint: str | None = None) -> State:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise StateError(f"{path}: corrupt state file ({exc}); move it away to start fresh") from None
        except OSError as exc:
            raise StateError(f"{path}: cannot read the state file ({exc.strerror})") from None
        state = cls.from_json(data, where=str(path))
        if expected_fingerprint is not None and state.spec_fingerprint != expected_fingerprint:
            raise StateError(
                f"{path}: state was written for a different spec (fingerprint {state.spec_fingerprint} != "
                f"{expected_fingerprint}); point 'state:' elsewhere or remove the file"
            )
        return state


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _check_json(value: Any, where: str) -> None:
    """Plain JSON values only, every number finite (``json.loads`` gives ``inf`` for ``1e999``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a finite number")


def check_int(value: Any, where: str, lo: int = 0, hi: int = MAX_STEP) -> int:
    """``value`` as an int in [lo, hi] (not a bool, not a float); ValueError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{where}: must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def check_number(value: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as a finite number in [lo, hi] (not a bool); ValueError naming ``where`` otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise ValueError(f"{where}: must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)
