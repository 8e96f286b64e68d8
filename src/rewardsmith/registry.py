"""Component registry: a plain table of verifiers, format rewards, shapers and advantage estimators by name.

Each component is a class with a pydantic ``Options`` model and capability tags; registering it
records its name, kind, one-line description and paper. Lookups fail loudly with the allowed
names, and options are validated at construction (scikit-learn style) with messages that name
the field and the allowed values.

This module imports no component package: it is the table the components register into.
:mod:`rewardsmith.components` fills it with the built-ins; look components up through that module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

Kind = Literal["verifier", "format", "shaper", "advantage"]
KINDS: tuple[str, ...] = ("verifier", "format", "shaper", "advantage")


class SpecError(ValueError):
    """A reward spec (or a component's options) is invalid; the message names the field."""


class Options(BaseModel):
    """Base of every component's options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    cls: type
    description: str
    paper: str

    @property
    def capabilities(self) -> dict[str, bool]:
        return capabilities(self.cls)


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

# Capability tags (scikit-learn style, on the class): adapters and the pipeline read these, never lists of names.
CAPABILITIES: dict[str, str] = {
    "group_aware": "its value for a rollout depends on the other rollouts of the same prompt (needs whole groups)",
    "step_scheduled": "follows a schedule over the training step (needs one call per step)",
    "stateful": "remembers across batches in the pipeline's State (needs one call per step)",
    "needs_tokens": "reads token ids (meta.token_ids / completion_ids) where the caller gives them",
    "needs_signals": "reads the policy's log-probs or entropies",
    "needs_model": "runs a model (an embedding model, a reward model or a judge)",
}


class Component:
    """Base class: ``name``/``kind``/``description``/``paper`` are set by :func:`register`; the
    capability tags (see :data:`CAPABILITIES`) are set by each class that has them."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options
    group_aware: ClassVar[bool] = False
    step_scheduled: ClassVar[bool] = False
    stateful: ClassVar[bool] = False
    needs_tokens: ClassVar[bool] = False
    needs_signals: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False
    # A small working configuration (every required option filled in, lengths of a few hundred
    # tokens): shown by ``rewardsmith list -v`` and used by the tests that run every component.
    example_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: Options | None = None, **kwargs: Any):
        if options is None:
            options = build_options(self.Options, kwargs, where=self.name)
        elif kwargs:
            raise TypeError("pass either an Options object or keyword options, not both")
        self.options = options

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump().items())
        return f"{type(self).__name__}({opts})"


def register(kind: str, name: str, description: str, paper: str = "") -> Callable[[type], type]:
    """Class decorator: ``@register("shaper", "kimi", "...", "Kimi k1.5 (2025)")``."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; allowed: {', '.join(KINDS)}")

    def wrap(cls: type) -> type:
        if name in _REGISTRY[kind]:
            raise ValueError(f"{kind} {name!r} is registered twice")
        cls.name, cls.kind, cls.description, cls.paper = name, kind, description, paper
        _REGISTRY[kind][name] = Entry(name, kind, cls, description, paper)
        return cls

    return wrap


def capabilities(cls: type) -> dict[str, bool]:
    """The capability tags of a component class, ``{tag: bool}`` in :data:`CAPABILITIES` order.

    A tag may be a property when it depends on the options (``tool_call``'s ``step_scheduled``):
    on the class it then reads as True — the component can have it; ask an instance for its value.
    """
    return {tag: bool(getattr(cls, tag, False)) for tag in CAPABILITIES}


def lookup(kind: str, name: str, field: str | None = None) -> Entry:
    """Return the entry registered so far or raise :class:`SpecError` listing the allowed names."""
    table = _REGISTRY[kind]
    if name not in table:
        allowed = ", ".join(sorted(table)) or "(none)"
        where = f"{field}: " if field else ""
        raise SpecError(f"{where}unknown {kind} {name!r}; allowed: {allowed}")
    return table[name]


def entries(kind: str | None = None) -> list[Entry]:
    """The entries registered so far, by kind then name."""
    kinds = [kind] if kind else list(KINDS)
    return [e for k in kinds for e in sorted(_REGISTRY[k].values(), key=lambda e: e.name)]


def build_options(model: type[Options], values: dict[str, Any], where: str) -> Options:
    """Validate ``values`` against ``model``; errors name ``where.field`` and what is allowed."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, where, model)) from None


def format_validation_error(exc: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{where}.{loc}" if where and loc else (where or loc)
        msg = err["msg"]
        owner = _owner_model(model, err["loc"][:-1]) if model is not None else None
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument") and owner is not None:
            allowed = ", ".join(_field_names(owner)) or "(no options)"
            msg = f"unknown option; allowed: {allowed}"
        lines.append(f"{field}: {msg}")
    return "; ".join(lines)


def _field_names(model: type) -> list[str]:
    """The fields of a pydantic model or a dataclass."""
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    return list(model.model_fields)


def _owner_model(model: type[BaseModel], path: tuple) -> type | None:
    """The (nested) pydantic model or dataclass that owns the field at ``path`` inside ``model``."""
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        nested = isinstance(annotation, type) and (
            issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
        )
        if not nested:
            return None
        model = annotation
    return model


def build(kind: str, config: str | dict[str, Any], field: str) -> Component:
    """Instantiate a component from ``"name"`` or ``{"name": ..., **options}``."""
    if isinstance(config, str):
        name, opts = config, {}
    elif isinstance(config, dict):
        if "name" not in config:
            raise SpecError(f"{field}: missing 'name' (the {kind} to use)")
        opts = dict(config)
        name = opts.pop("name")
    elif isinstance(config, Component):
        return config
    else:
        raise SpecError(f"{field}: expected a name or a mapping with 'name', got {type(config).__name__}")
    entry = lookup(kind, name, field)
    return entry.cls(build_options(entry.cls.Options, opts, where=f"{field}({name})"))
