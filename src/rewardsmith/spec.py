"""Reward specs: YAML, TOML or a dict, validated on load.

```yaml
verifier: math                       # or {name: math, ...}; or {data_source: verifier, default: ...}
base: {correct: 1.0, wrong: 0.0, no_answer: 0.0}
format: {name: think_answer, mode: gate}        # gate | add (with weight)
shaping:
  - {name: laser, target: 2048, alpha: 0.5}
advantage: {name: grpo}
length_unit: tokens                  # tokens | words | chars
state: runs/exp1/state.json
timeout_s: 5
```
Unknown keys and bad values are :class:`SpecError`\\ s naming the field and the allowed values.
This module only validates the spec's shape; :func:`rewardsmith.pipeline.load_spec` builds its
components (checking their names and options).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .registry import SpecError, format_validation_error
from .types import BaseValues

ComponentConfig = str | dict[str, Any]


class FormatSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    mode: Literal["gate", "add"] = "gate"
    weight: float = 1.0

    def component_options(self) -> dict[str, Any]:
        return {"name": self.name, **(self.model_extra or {})}


class Spec(BaseModel):
    """A validated reward spec (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    verifier: ComponentConfig | None = None
    base: BaseValues = Field(default_factory=BaseValues)
    format: FormatSpec | None = None
    shaping: list[ComponentConfig] = Field(default_factory=list)
    advantage: ComponentConfig | None = None
    length_unit: Literal["tokens", "words", "chars"] = "tokens"
    tokenizer: str | None = Field(default=None, description="local path of a HF tokenizer for token counts")
    state: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)
    workers: int | None = Field(default=None, ge=1)
    cache_size: int = Field(default=100_000, ge=0)

    @field_validator("format", mode="before")
    @classmethod
    def _format_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    def fingerprint(self) -> str:
        """Hash of everything that changes rewards (not paths, workers or timeouts)."""
        keep = self.model_dump(exclude={"state", "workers", "timeout_s", "cache_size", "name"})
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def verifier_map(self) -> dict[str, ComponentConfig] | None:
        """``{data_source: config}`` when the verifier is routed by source, else None."""
        v = self.verifier
        if isinstance(v, dict) and "name" not in v:
            return v
        return None


MAX_SPEC_BYTES = 1 << 20  # a reward spec is a few hundred bytes; anything near this is not one


def refuse_yaml_aliases(text: str, where: str) -> None:
    """Raise :class:`SpecError` if the YAML ``text`` uses an anchor (``&a``) or an alias (``*a``).

    Runs on the event stream, before any node is built, so an alias bomb ("billion laughs",
    nested inside otherwise allowed mappings) is refused in time linear in the text, never expanded.
    """
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise SpecError(
                f"{where}: line {line}: YAML anchors and aliases ({'*' if isinstance(event, yaml.AliasEvent) else '&'}{anchor}) "
                "are not allowed in a spec; write the values out"
            )


def read_spec_file(path: str | os.PathLike) -> dict[str, Any]:
    """A spec file's mapping (YAML without anchors/aliases, TOML or JSON; at most ``MAX_SPEC_BYTES``)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"spec file not found: {path}")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: {path.stat().st_size} bytes is too large for a spec (limit {MAX_SPEC_BYTES})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            refuse_yaml_aliases(text, str(path))
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SpecError(f"{path}: not valid {(path.suffix.lstrip('.') or 'yaml').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a mapping at the top level")
    data.setdefault("name", path.stem)
    return data


def parse_spec(source: str | os.PathLike | dict[str, Any] | Spec) -> Spec:
    """Validate a spec given as a path, a dict or a :class:`Spec` (shape only: component names and
    options are checked when :func:`rewardsmith.load_spec` builds the pipeline)."""
    if isinstance(source, Spec):
        return source
    data = read_spec_file(source) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a mapping or a path, got {type(data).__name__}")
    try:
        return Spec(**data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, "", Spec)) from None
