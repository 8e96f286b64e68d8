"""The catalogue loads every built-in verifier module: a module that registers components but is
missing from ``verifiers.BUILTIN_MODULES`` would silently leave its names unknown to specs."""

from pathlib import Path

import rewardsmith.verifiers as verifiers


def test_every_registering_verifier_module_is_listed():
    package = Path(verifiers.__file__).parent
    registering = {p.stem for p in package.glob("*.py") if "@register" in p.read_text()}
    assert registering, "no verifier module registers anything: the scan is broken"
    assert registering <= set(verifiers.BUILTIN_MODULES), registering - set(verifiers.BUILTIN_MODULES)


def test_catalogue_knows_per_turn_and_relevance():
    from rewardsmith import components, registry

    components.load_builtins()
    assert {"per_turn", "relevance", "math"} <= set(registry.names("verifier"))
