"""The runnable examples in docstrings stay runnable."""

import doctest
import importlib
import pkgutil

import pytest

import rewardsmith

# Modules whose docstring examples need optional heavy dependencies are tested in their own files.
SKIP_PREFIXES = ("rewardsmith.lab", "rewardsmith.integrations")


def core_modules():
    for info in pkgutil.walk_packages(rewardsmith.__path__, "rewardsmith."):
        if not info.name.startswith(SKIP_PREFIXES) and info.name != "rewardsmith.__main__":  # __main__ runs the CLI
            yield info.name


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert failures == 0


def test_core_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rewardsmith, rewardsmith.cli; rewardsmith.load_spec({'verifier': 'math'}); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
