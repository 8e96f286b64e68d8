"""The component catalogue: the registry filled with the built-in components.

:mod:`rewardsmith.registry` is a plain table that imports no component; this module, one layer
above the component packages, imports them (running their ``@register`` decorators) before every
lookup, so ``build("shaper", "kimi", ...)`` and ``entries()`` always see the built-ins.

    >>> from rewardsmith.components import build, entries
    >>> kimi = build("shaper", {"name": "kimi", "coef": 0.5}, field="shaping[0]")
    >>> kimi.options.coef, kimi.group_aware
    (0.5, True)
    >>> [e.name for e in entries("advantage")][:2]
    ['batch_std', 'canon']
"""

from __future__ import annotations

from typing import Any

from . import plugins, registry
from .registry import Component, Entry


def load_builtins() -> None:
    """Register the built-in verifiers, format rewards, shapers and advantage estimators."""
    from . import advantages, shaping, verifiers  # noqa: F401

    verifiers.load_builtins()


def lookup(kind: str, name: Any, field: str | None = None) -> Entry:
    """The entry of a built-in or registered component, or of a user's (an import path, a Python object
    or an installed entry point: :mod:`rewardsmith.plugins`); :class:`SpecError` lists the allowed names."""
    load_builtins()
    if isinstance(name, str) and name in registry.names(kind):
        return registry.lookup(kind, name, field)
    return plugins.resolve(kind, name, field, builtins=registry.names(kind))


def entries(kind: str | None = None) -> list[Entry]:
    """Every built-in and registered component of ``kind`` (all kinds when None), by kind then name."""
    load_builtins()
    return registry.entries(kind)


def build(kind: str, config: str | dict[str, Any] | Component, field: str) -> Component:
    """Instantiate a component from ``"name"`` or ``{"name": ..., **options}`` (see :func:`registry.build`)."""
    load_builtins()
    return registry.build(kind, config, field, find=lookup)
