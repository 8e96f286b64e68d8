"""docs/multiturn.md's example runs as written and prints what its comments say."""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scoring_example_prints_what_the_comments_say():
    text = (ROOT / "docs" / "multiturn.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/multiturn.md", "exec"), {})
    printed = out.getvalue().splitlines()
    prints = [line for line in code.splitlines() if line.startswith("print(")]
    assert len(printed) == len(prints)
    checked = 0
    for line, shown in zip(prints, printed):
        comment = line.partition("#")[2].strip()
        if re.match(r"(turn )?\[", comment):
            assert shown == comment, line
            checked += 1
    assert checked == 3
