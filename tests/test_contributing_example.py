"""CONTRIBUTING.md's "add a component" example runs as written: the component registers and its test passes."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_add_a_component_example_runs(tmp_path):
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("## Add a component") : text.index("## Habits")]
    component, test = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    # The component is written as a module of rewardsmith.shaping: its relative imports, made absolute.
    module = component.replace("from ..registry", "from rewardsmith.registry").replace(
        "from .base", "from rewardsmith.shaping.base"
    )
    assert module != component
    name = re.search(r"^def (test_\w+)", test, flags=re.M).group(1)
    (tmp_path / "flat_truncation.py").write_text(module)
    (tmp_path / "test_example.py").write_text("import flat_truncation  # registers it\n" + test + f"\n{name}()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "tests"), str(ROOT / "src")])}
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "test_example.py")], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
