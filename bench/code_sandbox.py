"""Cost of isolation in the ``code`` verifier: bubblewrap sandbox vs resource limits only.

One run scores the same honest completions, alternating item by item on the same cores, with
``sandbox: bwrap`` (namespaces + limits; the default) and ``sandbox: none`` with
``allow_unisolated: true`` (limits only, today's fallback), calling ``check`` serially so the
figure is the per-item cost, not a parallel throughput. Items: a stdin/stdout program with 3
tests (3 sandboxed runs) and an assert-style program with 3 tests (3 runs + 1 judge run).
Only honest programs run here: never run hostile code without the sandbox.

    python bench/code_sandbox.py            # 12 items of each kind per backend
    python bench/code_sandbox.py --items 3  # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

from rewardsmith.verifiers.code import CodeVerifier
from rewardsmith.verifiers.sandbox import probe_bwrap

STDIO = (
    "```python\na, b = map(int, input().split())\nprint(a + b)\n```",
    [{"input": f"{i} {i}\n", "output": f"{2 * i}\n"} for i in range(3)],
)
ASSERTS = ("```python\ndef add(a, b):\n    return a + b\n```", [f"assert add({i}, {i}) == {2 * i}" for i in range(3)])


def item_ms(verifier: CodeVerifier, completion: str, tests: list) -> float:
    """Milliseconds for one serial ``check`` (the item must pass)."""
    start = time.perf_counter()
    verdict = verifier.check(verifier.job(completion, None, {"tests": tests}))
    assert verdict.score == 1.0, verdict
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=12, help="items of each kind per backend")
    args = parser.parse_args()
    box, why = probe_bwrap()
    if box is None:
        raise SystemExit(f"bubblewrap does not work here: {why}")
    isolated, limits_only = CodeVerifier(sandbox="bwrap"), CodeVerifier(sandbox="none", allow_unisolated=True)
    print(f"{args.items} items of each kind, 3 tests each, serial check() calls alternating between the two")
    print(f"backends (so a change of load hits both); bwrap at {box.bwrap}")
    for kind, (completion, tests), runs in [("stdin/stdout", STDIO, 3), ("asserts", ASSERTS, 4)]:
        item_ms(isolated, completion, tests), item_ms(limits_only, completion, tests)  # warm the page cache
        pairs = [
            (item_ms(isolated, completion, tests), item_ms(limits_only, completion, tests)) for _ in range(args.items)
        ]
        for name, times in [
            ("bwrap (isolated)", [a for a, _ in pairs]),
            ("none (rlimits only)", [b for _, b in pairs]),
        ]:
            print(f"{kind:13s} {name:20s} median {statistics.median(times):7.1f} ms/item  max {max(times):7.1f} ms")
        ratio = statistics.median(a / b for a, b in pairs)
        extra = statistics.median(a - b for a, b in pairs)
        print(
            f"{kind:13s} isolation cost: {ratio:.2f}x, {extra:+.1f} ms/item ({extra / runs:+.1f} ms per sandboxed run)"
        )


if __name__ == "__main__":
    main()
