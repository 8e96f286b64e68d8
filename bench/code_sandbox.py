"""Cost of isolation in the ``code`` verifier: bubblewrap sandbox vs resource limits only.

One run scores the same honest completions, one after the other on the same cores, with
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


def per_item_ms(verifier: CodeVerifier, completion: str, tests: list, items: int) -> tuple[float, float]:
    """Median and max milliseconds per item over ``items`` serial checks (all must pass)."""
    times = []
    for _ in range(items):
        start = time.perf_counter()
        verdict = verifier.check(verifier.job(completion, None, {"tests": tests}))
        times.append((time.perf_counter() - start) * 1000)
        assert verdict.score == 1.0, verdict
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=12, help="items of each kind per backend")
    args = parser.parse_args()
    box, why = probe_bwrap()
    if box is None:
        raise SystemExit(f"bubblewrap does not work here: {why}")
    backends = {
        "bwrap (isolated)": CodeVerifier(sandbox="bwrap"),
        "none (rlimits only)": CodeVerifier(sandbox="none", allow_unisolated=True),
    }
    print(f"{args.items} items of each kind, 3 tests each, serial check() calls; bwrap at {box.bwrap}")
    results = {}
    for kind, (completion, tests), runs in [("stdin/stdout", STDIO, 3), ("asserts", ASSERTS, 4)]:
        for name, verifier in backends.items():
            per_item_ms(verifier, completion, tests, 1)  # warm the page cache
            results[kind, name] = per_item_ms(verifier, completion, tests, args.items)
            median, worst = results[kind, name]
            print(f"{kind:13s} {name:20s} median {median:7.1f} ms/item  max {worst:7.1f} ms")
        ratio = results[kind, "bwrap (isolated)"][0] / results[kind, "none (rlimits only)"][0]
        extra = results[kind, "bwrap (isolated)"][0] - results[kind, "none (rlimits only)"][0]
        print(
            f"{kind:13s} isolation cost: {ratio:.2f}x, {extra:+.1f} ms/item ({extra / runs:+.1f} ms per sandboxed run)"
        )


if __name__ == "__main__":
    main()
