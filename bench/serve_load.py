"""Load test of ``rewardsmith serve``: requests/s and p50/p99 latency, with and without hanging items.

Starts the real server (``python -m rewardsmith serve``, token from ``$REWARDSMITH_TOKEN``) on
127.0.0.1 with the ``math`` verifier, then for each number of clients (100 and 1000) and each
share of hanging items (0% and 10%) opens that many concurrent HTTP clients, each sending
``--requests`` requests of ``--items`` rollouts one after the other. A hanging item is a LaTeX
tower sympy cannot finish (the engine kills it at ``--timeout-s``); the others are small boxed
answers, each a new one (no cache hits). It prints, per scenario, requests/s over the wall time
and latency p50/p99 for all requests, and with hanging items apart for the requests holding none
— what the concurrent engine is for: a hanging item should cost its own request, not the others.

Everything is bounded: loopback only, a fixed number of requests, a client timeout, and the
server stopped at the end (SIGINT, then SIGKILL).

    python bench/serve_load.py             # 100 and 1000 clients, 0% and 10% hanging
    python bench/serve_load.py --quick     # smoke run (10 and 30 clients)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TOWER = "\\boxed{\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}"  # sympy works on this far beyond any timeout
TOKEN = "bench-" + os.urandom(8).hex()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(spec: Path, port: int, max_concurrency: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "REWARDSMITH_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rewardsmith",
        "serve",
        "--spec",
        str(spec),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-concurrency",
        str(max_concurrency),
        "--max-connections",
        "4096",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_request(rng: random.Random, serial: int, items: int, hang_rate: float) -> tuple[dict, bool]:
    queries, labels, hangs = [], [], False
    for j in range(items):
        if rng.random() < hang_rate:
            queries.append(TOWER)
            labels.append("1")
            hangs = True
        else:
            value = serial * items + j
            queries.append(f"so the answer is \\boxed{{{value}}}")
            labels.append(str(value if rng.random() < 0.7 else value + 1))
    return {"query": queries, "prompts": [""] * items, "labels": labels}, hangs


async def scenario(
    url: str, clients: int, requests: int, items: int, hang_rate: float, seed: int, client_timeout_s: float
) -> dict:
    rng = random.Random(seed)
    plan = [
        [make_request(rng, (seed * clients + c) * requests + r, items, hang_rate) for r in range(requests)]
        for c in range(clients)
    ]
    latencies: list[tuple[float, bool]] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=client_timeout_s
    ) as http:

        async def client(bodies: list[tuple[dict, bool]]) -> None:
            for body, hangs in bodies:
                t0 = time.perf_counter()
                try:
                    r = await http.post("/get_reward", json=body)
                    ok = r.status_code == 200 and len(r.json()["rewards"]) == items
                    if not ok:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append((time.perf_counter() - t0, hangs))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(p) for p in plan))
        wall = time.perf_counter() - t0
    all_lat = np.array([x for x, _ in latencies])
    clean = np.array([x for x, h in latencies if not h])
    pct = lambda a, q: float(np.percentile(a, q)) if len(a) else float("nan")  # noqa: E731
    return {
        "clients": clients,
        "hang_rate": hang_rate,
        "requests": clients * requests,
        "answered": len(latencies),
        "failures": failures,
        "wall_s": wall,
        "rps": len(latencies) / wall,
        "p50": pct(all_lat, 50),
        "p99": pct(all_lat, 99),
        "clean_requests": len(clean),
        "clean_p50": pct(clean, 50),
        "clean_p99": pct(clean, 99),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--hang-rates", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--requests", type=int, default=1, help="requests per client, sent one after the other")
    ap.add_argument("--items", type=int, default=1, help="rollouts per request")
    ap.add_argument("--timeout-s", type=float, default=0.5, help="the spec's hard timeout per item")
    ap.add_argument("--workers", type=int, default=2, help="verifier processes the pool keeps")
    ap.add_argument("--max-concurrency", type=int, default=16, help="requests the server scores at once")
    ap.add_argument("--client-timeout-s", type=float, default=300.0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 and 30 clients")
    args = ap.parse_args()
    if args.quick:
        args.clients = [10, 30]
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "verifier": {"name": "math", "extract": ["boxed"], "inner_timeout_s": 60},
                    "timeout_s": args.timeout_s,
                    "workers": args.workers,
                    "length_unit": "words",
                    "cache_size": 0,
                }
            )
        )
        port = free_port()
        log = Path(tmp) / "server.log"
        proc = start_server(spec, port, args.max_concurrency, log)
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(
                f"{url}/get_reward",
                json={"query": ["\\boxed{1}"] * 2, "labels": ["1", "1"]},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=120,
            ).raise_for_status()  # workers started
            print(
                f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; "
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}"
            )
            print(
                f"server: math verifier, timeout_s {args.timeout_s:g}, {args.workers} pooled workers, max-concurrency {args.max_concurrency}; "
                f"{args.requests} request(s) of {args.items} item(s) per client"
            )
            print(
                f"{'clients':>7} {'hanging':>7} {'answered':>9} {'req/s':>8} {'p50 s':>7} {'p99 s':>7} {'clean p50':>9} {'clean p99':>9}"
            )
            seed = 0
            for clients in args.clients:
                for rate in args.hang_rates:
                    seed += 1
                    res = asyncio.run(
                        scenario(url, clients, args.requests, args.items, rate, seed, args.client_timeout_s)
                    )
                    print(
                        f"{clients:>7} {rate:>7.0%} {res['answered']:>4}/{res['requests']:<4} {res['rps']:>8.1f} {res['p50']:>7.2f} "
                        f"{res['p99']:>7.2f} {res['clean_p50']:>9.2f} {res['clean_p99']:>9.2f}",
                        flush=True,
                    )
                    for failure in res["failures"][:3]:
                        print(f"    failed: {failure}")
        finally:
            stop_server(proc)
    print("clean = requests holding no hanging item (with 0% hanging: every request)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
