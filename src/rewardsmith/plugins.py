"""User components: by import path, from installed packages' entry points, or as Python objects.

Besides a built-in name, a spec may name a component

- by **import path**, ``{name: "mypkg.rewards:MyVerifier", ...options}`` (or the plain string);
- by the **name of an entry point** in the group ``rewardsmith.components`` that an installed
  package declares (``my_verifier = "mypkg.rewards:MyVerifier"`` under
  ``[project.entry-points."rewardsmith.components"]``);
- from Python, by the object itself: ``{"name": MyVerifier}`` or ``{"name": my_reward_function}``.

The object is a component class whose base class gives its kind (:class:`~rewardsmith.verifiers.base.Verifier`,
:class:`~rewardsmith.verifiers.format.FormatReward`, :class:`~rewardsmith.shaping.base.Shaper`,
:class:`~rewardsmith.advantages.base.AdvantageEstimator`), or — for a verifier — a plain function
with TRL's reward signature, run by :class:`~rewardsmith.verifiers.reward_function.RewardFunctionVerifier`.
A component that cannot be imported, has the wrong kind, or cannot reach the verification workers
(fresh Python processes) is a :class:`SpecError` naming it, raised when the spec is loaded.

    >>> from rewardsmith import load_spec
    >>> pipe = load_spec({"verifier": "rewardsmith.verifiers.exact:ExactVerifier", "length_unit": "words"})
    >>> pipe.score([{"prompt_id": "q", "completion": "Answer: 4", "answer": "4"}]).total.tolist()
    [1.0]
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .engine import ensure_portable
from .registry import KINDS, Component, Entry, SpecError

GROUP = "rewardsmith.components"
_BASES = {"verifier": "Verifier", "format": "FormatReward", "shaper": "Shaper", "advantage": "AdvantageEstimator"}


@dataclass(frozen=True)
class Installed:
    """One entry point of the ``rewardsmith.components`` group: its entry, or why it cannot be used."""

    name: str
    value: str  # "pkg.module:Object"
    dist: str  # the installed distribution that declares it
    entry: Entry | None
    error: str = ""


def resolve(kind: str, name: Any, field: str | None, builtins: list[str]) -> Entry:
    """The entry for ``name`` when it is not a built-in: an import path, a Python object or an
    entry-point name; a :class:`SpecError` naming the field and what is allowed otherwise."""
    where = f"{field}: " if field else ""
    if not isinstance(name, str):
        owner = name if hasattr(name, "__qualname__") else type(name)  # a function or class, else a callable object
        path = f"{owner.__module__}:{owner.__qualname__}"
        return _entry(kind, path, name, f"{where}{kind} {path}")
    if ":" in name:
        return _entry(kind, name, import_object(name, f"{where}{kind} {name!r}"), f"{where}{kind} {name!r}")
    points = [ep for ep in _entry_points() if ep.name == name]
    if not points:
        installed = sorted({ep.name for ep in _entry_points()})
        extra = f"; installed: {', '.join(installed)}" if installed else ""
        raise SpecError(
            f"{where}unknown {kind} {name!r}; allowed: {', '.join(builtins) or '(none)'}{extra}; "
            "or an import path 'package.module:Object'"
        )
    if len(points) > 1:
        raise SpecError(
            f"{where}{kind} {name!r} is declared by several installed packages: "
            f"{', '.join(f'{_dist(ep)} ({ep.value})' for ep in points)}; name one by import path instead"
        )
    ep = points[0]
    label = f"{where}{kind} {name!r} (entry point {ep.value!r} of package {_dist(ep)})"
    return _entry(kind, name, _load(ep, label), label)


def import_object(path: str, label: str) -> Any:
    """The object at ``"package.module:attribute.path"``; a :class:`SpecError` naming ``label`` otherwise."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise SpecError(f"{label}: not an import path; write 'package.module:Object'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # a broken user module raises anything while importing
        raise SpecError(f"{label}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"{label}: {module_name!r} has no attribute {attr!r}") from None
    return obj


def installed() -> list[Installed]:
    """Every entry point of the group, loaded and checked (broken ones carry their error)."""
    out = []
    for ep in sorted(_entry_points(), key=lambda ep: ep.name):
        label = f"entry point {ep.name!r} ({ep.value!r} of package {_dist(ep)})"
        try:
            obj = _load(ep, label)
            kind = _kind_of(obj)
            if kind is None:
                raise SpecError(f"{label} is neither a component class ({', '.join(_BASES.values())}) nor a function")
            out.append(Installed(ep.name, ep.value, _dist(ep), _entry(kind, ep.name, obj, label)))
        except SpecError as exc:
            out.append(Installed(ep.name, ep.value, _dist(ep), None, str(exc)))
    return out


def with_installed(builtins: list[Entry], kind: str | None = None) -> tuple[list[Entry], list[Installed]]:
    """The ``builtins`` and the installed entries of ``kind`` (all kinds when None), by kind then name,
    and the installed components that cannot be used (broken, or shadowed by a built-in's name)."""
    found = list(builtins)
    taken = {(e.kind, e.name) for e in found}
    problems = []
    for item in installed():
        if item.entry is None:
            problems.append(item)
        elif (item.entry.kind, item.name) in taken:
            problems.append(
                Installed(
                    item.name, item.value, item.dist, None, f"shadowed by the built-in {item.entry.kind} {item.name!r}"
                )
            )
        elif kind is None or item.entry.kind == kind:
            found.append(item.entry)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found, key=lambda e: (order[e.kind], e.name)), problems


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=GROUP))


def _dist(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _load(ep: EntryPoint, label: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:
        raise SpecError(f"{label} cannot be loaded: {type(exc).__name__}: {exc}") from None


def _kind_of(obj: Any) -> str | None:
    """The kind a component class declares through its base class; ``verifier`` for a plain function."""
    if isinstance(obj, type):
        return (obj.kind or None) if issubclass(obj, Component) else None
    return "verifier" if callable(obj) else None


def _entry(kind: str, name: str, obj: Any, label: str) -> Entry:
    """A registry entry for a user's class or function, after checking its kind and that verification
    workers can load it."""
    declared = _kind_of(obj)
    if declared != kind:
        if isinstance(obj, type):
            what = _a(declared) if declared else "a class that is not a rewardsmith component"
        else:
            what = (
                "a function (only a verifier can be one)"
                if callable(obj)
                else f"{_a(type(obj).__name__)}, not a class or a function"
            )
        hint = f"; {_a(kind)} subclasses {_BASES[kind]}" + (
            " or is a function f(completions, **columns)" if kind == "verifier" else ""
        )
        raise SpecError(f"{label} is {what}, not {_a(kind)}{hint} (see docs/components.md)")
    if isinstance(obj, type):
        cls = obj if "name" in vars(obj) else _named(obj, name)
    else:
        from .verifiers.reward_function import RewardFunctionVerifier

        cls = RewardFunctionVerifier.bind(obj, name)
    if kind == "verifier" and cls.isolate:
        ensure_portable(obj, label)
    return Entry(cls.name, kind, cls, cls.description, cls.paper)


def _named(cls: type[Component], name: str) -> type[Component]:
    """A factory for ``cls`` (an unregistered class, or one inheriting a built-in's name) whose
    instances carry ``name`` — the spec's name for it — as an instance attribute. The instances are
    plain ``cls`` objects, so they pickle by reference to ``cls``; the user's class is left untouched."""

    def __new__(factory: type, *args: Any, **kwargs: Any) -> Component:
        obj = cls(*args, **kwargs)
        obj.name = name  # type: ignore[misc]
        return obj

    description = (cls.__doc__ or "").strip().partition("\n")[0]
    return type(
        cls.__name__,
        (cls,),
        {
            "__new__": __new__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "name": name,
            "description": description,
        },
    )


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"
