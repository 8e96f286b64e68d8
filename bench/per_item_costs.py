"""Per-item verification cost of each verifier, warm, in one process (the figures behind docs/scaling.md).

For each verifier: ``--items`` rollouts of the shape that verifier sees in training, checked
serially after one warm-up call (imports and parsers loaded, as in a long-running worker;
repeated answers skipped, as the engine verifies an answer once). Prints the mean microseconds
of extraction (``job``: on the driver, once per rollout), the median, p99 and mean milliseconds
of ``check`` (on the workers, once per unique answer) and the checks per core-second. ``code``
is not measured here: see ``bench/code_sandbox.py`` (each item runs programs in a sandbox).

    python bench/per_item_costs.py [--items 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batch, to_records  # noqa: E402

SQL_DB = {
    "schema": "CREATE TABLE emp(id INT, name TEXT, dept TEXT, salary REAL);",
    "data": "INSERT INTO emp VALUES " + ",".join(f"({i},'n{i}','d{i % 5}',{i * 1.5})" for i in range(200)) + ";",
}


def workloads(n: int, rng: random.Random) -> dict[str, tuple[dict, list[tuple[str, Any, dict]]]]:
    """verifier name -> (options, [(completion, answer, meta)])."""
    math = [(r["completion"], r["answer"], {}) for r in to_records(make_batch(n, 4, 0.0, 7))][::4]
    exact = [(f"The answer is {rng.randrange(n)}.", str(rng.randrange(n)), {}) for _ in range(n)]
    choice = [
        (
            f"Reasoning... so the answer is ({rng.choice('ABCD')})",
            rng.choice("ABCD"),
            {},
        )
        for _ in range(n)
    ]
    sql = [
        (
            f"```sql\nSELECT name FROM emp WHERE dept = 'd{rng.randrange(5)}' AND salary > {rng.randrange(100)}\n```",
            f"SELECT name FROM emp WHERE dept = 'd{rng.randrange(5)}' AND salary > {rng.randrange(100)}",
            SQL_DB,
        )
        for _ in range(n)
    ]
    call = {"name": "get_weather", "parameters": {"city": "Paris", "unit": "C"}}
    tool = [
        (
            "<think>need weather</think>\n"
            f"<tool_call>\n{json.dumps(dict(call, parameters={'city': f'c{k}'}))}\n</tool_call>",
            json.dumps([call]),
            {},
        )
        for k in (rng.randrange(n) for _ in range(n))
    ]
    nuggets = {
        "nuggets": [
            "Paris is the capital of France",
            "The Eiffel Tower opened in 1889",
            "Lyon is the third largest city",
        ]
    }
    rubric = [
        (
            " ".join(
                rng.choice(
                    [
                        "Paris is the capital of France.",
                        "The Eiffel Tower dates from 1889.",
                        "Rain is common.",
                        "Lyon is large.",
                    ]
                )
                for _ in range(20)
            ),
            None,
            nuggets,
        )
        for _ in range(n)
    ]
    out = {
        "math": ({}, math),
        "exact": ({}, exact),
        "choice": ({}, choice),
        "sql": ({}, sql),
        "tool_call": ({}, tool),
        "rubric": ({}, rubric),
    }
    try:
        import reasoning_gym

        entries = reasoning_gym.create_dataset("basic_arithmetic", size=n, seed=1)
        out["reasoning_gym"] = (
            {},
            [
                (
                    f"<answer>{e['answer'] if rng.random() < 0.5 else '0'}</answer>",
                    e["answer"],
                    {"entry": e},
                )
                for e in entries
            ],
        )
    except ImportError:
        print("reasoning_gym: not installed (the gym extra), skipped")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200)
    args = ap.parse_args()

    import logging

    from rewardsmith.components import build

    logging.disable(logging.WARNING)
    print(
        f"{'verifier':<14} {'isolated':>8} {'unique':>6} {'job us':>7} {'check p50 ms':>12} {'p99 ms':>8} "
        f"{'mean ms':>8} "
        f"{'checks/core-s':>13}"
    )
    for name, (opts, items) in workloads(args.items, random.Random(0)).items():
        verifier = build("verifier", {"name": name, **opts}, field="verifier")
        first = verifier.job(*items[0])
        if first is not None:
            verifier.check(first)  # warm-up: imports, parsers
        job_s, check_ms, seen = [], [], set()
        for completion, answer, meta in items:
            t0 = time.perf_counter()
            job = verifier.job(completion, answer, meta)
            job_s.append(time.perf_counter() - t0)
            if job is None or job.key in seen:
                continue  # no answer, or a repeat the engine would not verify again
            seen.add(job.key)
            t0 = time.perf_counter()
            verifier.check(job)
            check_ms.append((time.perf_counter() - t0) * 1000)
        check_ms.sort()
        p99 = check_ms[min(len(check_ms) - 1, int(0.99 * len(check_ms)))]
        mean = statistics.fmean(check_ms)
        print(
            f"{name:<14} {str(verifier.isolate):>8} {len(check_ms):>6} {statistics.fmean(job_s) * 1e6:7.0f} "
            f"{statistics.median(check_ms):12.2f} {p99:8.2f} {mean:8.2f} {1000 / mean:13.0f}"
        )


if __name__ == "__main__":
    main()
