"""The runnable examples in docstrings stay runnable."""

import doctest
import importlib
import pkgutil

import pytest

import rewardkit

# Modules whose docstring examples need optional heavy dependencies are tested in their own files.
SKIP_PREFIXES = ("rewardkit.lab", "rewardkit.integrations")


def core_modules():
    for info in pkgutil.walk_packages(rewardkit.__path__, "rewardkit."):
        if not info.name.startswith(SKIP_PREFIXES) and info.name != "rewardkit.__main__":  # __main__ runs the CLI
            yield info.name


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert failures == 0


def test_core_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rewardkit, rewardkit.cli; rewardkit.load_spec({'verifier': 'math'}); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
