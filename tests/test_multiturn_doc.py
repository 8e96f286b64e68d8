"""docs/multiturn.md's examples run as written and print what their comments say."""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_examples_print_what_the_comments_say():
    text = (ROOT / "docs" / "multiturn.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    checked = []
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/multiturn.md", "exec"), {})
        printed = out.getvalue().splitlines()
        prints = [line for line in code.splitlines() if line.startswith("print(")]
        assert len(printed) == len(prints)
        checked.append(0)
        for line, shown in zip(prints, printed):
            comment = line.partition("#")[2].strip()
            if re.match(r"(turn )?\[", comment):
                assert shown == comment, line
                checked[-1] += 1
    assert checked == [3, 4]  # the trajectory scoring example, the per-turn verifier example
