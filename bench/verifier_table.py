"""Scoring benchmark: every verifier, 1 / 2 / all workers, cold and warm, beside TRL's and verl's peers.

For each verifier a small batch of realistic records is scored by a fresh pipeline (*cold*: worker
start-up included) and then a second batch from another seed by the same pipeline (*warm*, as
inside a trainer). Per-item latency is the engine's own clock per item (from the moment a worker
is ready for it to its answer; for in-process verifiers, the ``check`` call). Verifiers that run in
the calling process (``isolate`` false) use no workers: one row. Peers run serially in this
process as their frameworks call them: TRL ``accuracy_reward`` (math) and verl
``default_compute_score`` (``lighteval/MATH`` for math, ``openai/gsm8k`` for exact); cold
includes importing them. open-r1's reward functions are not installable here (no release on
the package index), so they are left out.

    python bench/verifier_table.py            # the table (markdown) on stdout, ~2-4 min on 2 cores
    python bench/verifier_table.py --n 32     # smaller batches
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batch, to_records  # noqa: E402
from rewardsmith import load_spec  # noqa: E402
from rewardsmith.components import lookup  # noqa: E402  (the catalogue: built-ins loaded)
from rewardsmith.engine import VerificationEngine  # noqa: E402

TIMEOUT_S = 5.0


class TimedEngine(VerificationEngine):
    """The local engine, keeping each verified item's seconds (the clock it already runs)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.item_s: list[float] = []

    def _note(self, verdict, seconds: float) -> None:
        super()._note(verdict, seconds)
        self.item_s.append(seconds)


# --------------------------------------------------------------------------- batches
def _math(rng: random.Random, n: int) -> list[dict]:
    return to_records(make_batch(max(1, n // 8), 8, 0.0, rng.randrange(10**6)))[:n]


def _exact(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        said = a + b + (0 if rng.random() < 0.5 else rng.choice((-1, 1, 10)))
        text = f"We add {a} and {b}. {a} + {b} = {said}.\n#### {said}"
        out.append({"prompt_id": f"e{i // 4}", "completion": text, "answer": str(a + b)})
    return out


def _choice(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        gold, said = rng.choice("ABCD"), rng.choice("ABCD")
        text = f"Option {rng.choice('ABCD')} fails the second condition; checking the rest.\nAnswer: ({said})"
        out.append({"prompt_id": f"c{i // 4}", "completion": text, "answer": gold})
    return out


def _reasoning_gym(rng: random.Random, n: int) -> list[dict]:
    import reasoning_gym as rg

    entries = list(rg.create_dataset("chain_sum", size=n, seed=rng.randrange(10**6)))
    out = []
    for i, e in enumerate(entries):
        said = e["answer"] if rng.random() < 0.5 else str(int(e["answer"]) + 1)
        out.append(
            {
                "prompt_id": f"r{i}",
                "completion": f"<answer>{said}</answer>",
                "answer": e["answer"],
                "meta": {"entry": e},
            }
        )
    return out


def _code(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        k = rng.randint(1, 50)
        op = "+" if rng.random() < 0.6 else "-"
        program = f"```python\na, b = map(int, input().split())\nprint(a {op} b + {k} - {k})\n```"
        tests = [{"input": f"{x} {y}\n", "output": f"{x + y}\n"} for x, y in ((1, 2), (k, 3 * k))]
        out.append({"prompt_id": f"p{i}", "completion": program, "answer": None, "meta": {"tests": tests}})
    return out


def _sql(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        rows = ", ".join(f"({rng.randint(0, 20)})" for _ in range(20))
        meta = {"schema": "CREATE TABLE t(x INT);", "data": f"INSERT INTO t VALUES {rows};"}
        cut = rng.randint(0, 20)
        said = rng.choice((f"x > {cut}", f"x >= {cut + 1}", f"x > {cut + 1}"))
        out.append(
            {
                "prompt_id": f"s{i}",
                "completion": f"```sql\nSELECT x FROM t WHERE {said}\n```",
                "answer": f"SELECT x FROM t WHERE x > {cut}",
                "meta": meta,
            }
        )
    return out


def _tool_call(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        city = rng.choice(["Paris", "Lyon", "Oslo", "Lima"])
        gold = {"name": "get_weather", "parameters": {"city": city, "unit": "C"}}
        said = {"name": "get_weather", "parameters": {"city": city, "unit": rng.choice("CF")}}
        text = f"<think>look it up</think>\n<tool_call>\n{json.dumps(said)}\n</tool_call>"
        out.append({"prompt_id": f"t{i}", "completion": text, "answer": json.dumps([gold])})
    return out


def _box(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        x, y = rng.randint(0, 80), rng.randint(0, 80)
        dx, dy = rng.randint(-5, 5), rng.randint(-5, 5)
        pred = [x + dx, y + dy, x + dx + 12, y + dy + 12]
        out.append(
            {
                "prompt_id": f"b{i}",
                "completion": json.dumps([{"bbox_2d": pred}]),
                "answer": json.dumps([x, y, x + 10, y + 10]),
                "meta": {"width": 100, "height": 100},
            }
        )
    return out


def _rubric(rng: random.Random, n: int) -> list[dict]:
    facts = [
        "Paris is the capital of France",
        "The Eiffel Tower opened in 1889",
        "Lyon is the third largest city",
        "The Seine flows through Paris",
        "France uses the euro",
    ]
    out = []
    for i in range(n):
        said = ". ".join(rng.sample(facts, rng.randint(1, 4)))
        out.append(
            {"prompt_id": f"u{i}", "completion": said + ".", "answer": None, "meta": {"nuggets": rng.sample(facts, 3)}}
        )
    return out


VERIFIERS: dict[str, tuple[dict, Callable[[random.Random, int], list[dict]], float]] = {
    # name: (verifier spec, batch builder, share of --n used: code runs a program per test)
    "math": ({"name": "math"}, _math, 1.0),
    "exact": ({"name": "exact"}, _exact, 1.0),
    "choice": ({"name": "choice", "letters": "ABCD"}, _choice, 1.0),
    "reasoning_gym": ({"name": "reasoning_gym"}, _reasoning_gym, 1.0),
    "code": ({"name": "code", "sandbox": "none", "allow_unisolated": True}, _code, 0.25),
    "sql": ({"name": "sql"}, _sql, 1.0),
    "tool_call": ({"name": "tool_call"}, _tool_call, 1.0),
    "box": ({"name": "box"}, _box, 1.0),
    "rubric": ({"name": "rubric"}, _rubric, 1.0),
}


# --------------------------------------------------------------------------- measuring
def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _row(name: str, who: str, workers: str, phase: str, n: int, seconds: float, item_s: list[float]) -> dict:
    return {
        "verifier": name,
        "who": who,
        "workers": workers,
        "phase": phase,
        "n": n,
        "rate": n / seconds,
        "p50_ms": 1e3 * _pct(item_s, 0.5),
        "p99_ms": 1e3 * _pct(item_s, 0.99),
    }


def measure_rewardsmith(name: str, workers: int | None, n: int, seed: int) -> list[dict]:
    verifier, build, share = VERIFIERS[name]
    size = max(4, int(n * share))
    first, second = build(random.Random(seed), size), build(random.Random(seed + 1), size)
    engine = TimedEngine(workers or 1, TIMEOUT_S, cache_size=0)  # warm means warm workers, not cached verdicts
    spec = {"verifier": verifier, "length_unit": "chars", "workers": workers or 1, "timeout_s": TIMEOUT_S}
    label = "in-process" if workers is None else str(workers)
    rows = []
    t0 = time.perf_counter()
    with load_spec(spec, engine=engine) as pipe:
        pipe.score(first)
        rows.append(_row(name, "rewardsmith", label, "cold", len(first), time.perf_counter() - t0, engine.item_s))
        engine.item_s = []
        t0 = time.perf_counter()
        pipe.score(second)
        rows.append(_row(name, "rewardsmith", label, "warm", len(second), time.perf_counter() - t0, engine.item_s))
    return rows


def _peer(name: str, who: str, make: Callable[[], Callable[[dict], float]], n: int, seed: int) -> list[dict]:
    _, build, _ = VERIFIERS[name]
    rows = []
    t_import = time.perf_counter()
    call = make()
    import_s = time.perf_counter() - t_import
    for phase, batch in (("cold", build(random.Random(seed), n)), ("warm", build(random.Random(seed + 1), n))):
        item_s = []
        for record in batch:
            t = time.perf_counter()
            call(record)
            item_s.append(time.perf_counter() - t)
        total = sum(item_s) + (import_s if phase == "cold" else 0.0)
        rows.append(_row(name, who, "1 (serial)", phase, len(batch), total, item_s))
    return rows


def _trl_accuracy() -> Callable[[dict], float]:
    from trl.rewards import accuracy_reward

    def call(r: dict) -> float:
        return accuracy_reward(
            completions=[[{"role": "assistant", "content": r["completion"]}]], solution=[f"${r['answer']}$"]
        )[0]

    return call


def _verl(source: str) -> Callable[[], Callable[[dict], float]]:
    def make() -> Callable[[dict], float]:
        from verl.utils.reward_score import default_compute_score

        return lambda r: default_compute_score(source, r["completion"], r["answer"])

    return make


PEERS = [
    ("math", "TRL accuracy_reward", _trl_accuracy),
    ("math", "verl default_compute_score (lighteval/MATH)", _verl("lighteval/MATH")),
    ("exact", "verl default_compute_score (openai/gsm8k)", _verl("openai/gsm8k")),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="rollouts per batch (code: a quarter of it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=None, help="verifiers to run (default: all)")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    cores = os.cpu_count() or 1
    counts = sorted({1, 2, cores})
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()[0]
    rows: list[dict] = []
    for name in args.only or list(VERIFIERS):
        isolated = lookup("verifier", name).cls.isolate
        for workers in counts if isolated else [None]:
            try:
                rows += measure_rewardsmith(name, workers, args.n, args.seed)
            except Exception as exc:  # a verifier that cannot run here is reported, not fatal
                rows.append({"verifier": name, "who": "rewardsmith", "error": f"{type(exc).__name__}: {exc}"[:120]})
        for peer_name, who, make in PEERS:
            if peer_name == name:
                try:
                    rows += _peer(name, who, make, args.n, args.seed)
                except Exception as exc:
                    rows.append({"verifier": name, "who": who, "error": f"{type(exc).__name__}: {exc}"[:120]})
    print(
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: {cores} CPU cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, load average "
        f"{load:.1f} before / {os.getloadavg()[0]:.1f} after (shared machine). Batches of {args.n} rollouts "
        "(code: a quarter); `all` workers = the machine's cores.\n"
    )
    print("| verifier | scorer | workers | phase | rollouts | rollouts/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['verifier']} | {r['who']} | | | | not run: {r['error']} | | |")
            continue
        print(
            f"| {r['verifier']} | {r['who']} | {r['workers']} | {r['phase']} | {r['n']} | {r['rate']:.1f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
