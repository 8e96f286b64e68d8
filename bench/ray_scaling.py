"""Ray scaling: math scoring with the local engine vs the Ray engine, cold and warm.

Same GRPO-like batch as ``verify_throughput.py`` (``bench/_data.py``). Two parts, in one run:

1. **Cold** (``--prompts x --rollouts``): each configuration a fresh pipeline and engine (worker
   and actor start-up included, no cache carried over), Ray with each ``--workers`` count.
2. **Warm, 512 rollouts** (``--warm-rollouts``): as inside a trainer on a running cluster — one
   local engine (2 processes) and one Ray engine (``max(--workers)`` actors) kept across batches,
   both warmed on one batch, then ``--repeats`` batches from new seeds, each scored by both in
   alternating order; prints the median seconds and the ratio Ray / local (target <= 1.2).

Every Ray result is checked identical to the local engine's. On this 2-core machine Ray mostly
shows its overhead; on a cluster pass ``--address auto`` (or ``ray://head:10001``) and
``--workers`` up to the cluster's CPUs.

    python bench/ray_scaling.py [--prompts 128 --rollouts 16] [--address auto] [--workers 1 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batch, to_records  # noqa: E402


def warm_ratio(spec: dict, args: argparse.Namespace) -> bool:
    """Median seconds of local and Ray on ``--repeats`` 512-rollout batches, engines kept warm."""
    from rewardsmith import load_spec
    from rewardsmith.integrations.ray_engine import RayVerificationEngine

    rollouts = args.rollouts
    prompts = max(1, args.warm_rollouts // rollouts)
    local = load_spec({**spec, "workers": 2})
    engine = RayVerificationEngine(max(args.workers), spec["timeout_s"])
    remote = load_spec(spec, engine=engine)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    identical = True
    try:
        warm = to_records(make_batch(prompts, rollouts, args.pathological_rate, args.seed + 1000))
        local.score_records(warm)
        remote.score_records(warm)
        for r in range(args.repeats):
            records = to_records(make_batch(prompts, rollouts, args.pathological_rate, args.seed + 2000 + r))
            out = {}
            for name in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
                pipe = local if name == "local" else remote
                t0 = time.perf_counter()
                out[name] = pipe.score_records(records)
                times[name].append(time.perf_counter() - t0)
            identical &= out["ray"] == out["local"]
    finally:
        local.close()
        engine.close()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"\nwarm engines, {prompts * rollouts} rollouts ({prompts} prompts x {rollouts}), "
        f"{args.repeats} batches of new seeds"
    )
    print(f"local engine (2 processes): median {med['local']:.2f} s  [{', '.join(f'{t:.2f}' for t in times['local'])}]")
    print(
        f"ray ({engine.n_workers} actors, nodes used: {len(engine.node_items)}): median {med['ray']:.2f} s  "
        f"[{', '.join(f'{t:.2f}' for t in times['ray'])}]"
    )
    ratio = med["ray"] / med["local"]
    print(
        f"warm {prompts * rollouts}-rollout ratio ray / local: {ratio:.2f}x "
        f"(target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'}); identical: {identical}"
    )
    return identical


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--rollouts", type=int, default=16)
    ap.add_argument("--pathological-rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--address", default=None)
    ap.add_argument(
        "--warm-rollouts",
        type=int,
        default=512,
        help="rollouts per warm batch (0: skip the warm part)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="warm batches, each scored by both engines",
    )
    ap.add_argument("--no-cold", action="store_true", help="skip the cold part")
    args = ap.parse_args()

    import ray

    from rewardsmith import load_spec
    from rewardsmith.integrations.ray_engine import score_records_ray

    spec = {"verifier": "math", "length_unit": "chars", "timeout_s": 5}
    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False)
    print(
        f"ray start-up: {time.perf_counter() - t0:.1f} s (not counted below); "
        f"cluster CPUs: {ray.cluster_resources().get('CPU', 0):g}, "
        f"nodes: {sum(n['Alive'] for n in ray.nodes())}"
    )
    ok = True
    if not args.no_cold:
        records = to_records(make_batch(args.prompts, args.rollouts, args.pathological_rate, args.seed))
        rows = []
        pipe = load_spec({**spec, "workers": 2})
        t0 = time.perf_counter()
        expected = pipe.score_records(records)
        local_s = time.perf_counter() - t0
        pipe.close()
        rows.append(("local engine, 2 processes", local_s, True))
        for n in args.workers:
            t0 = time.perf_counter()
            scored, _ = score_records_ray(spec, records, workers=n)
            rows.append(
                (
                    f"ray, {n} actor{'s' if n > 1 else ''}",
                    time.perf_counter() - t0,
                    scored == expected,
                )
            )
        print(
            f"cold: {len(records)} rollouts ({args.prompts} prompts x {args.rollouts}); "
            "fresh pipelines, actor start-up included"
        )
        print(f"{'configuration':<28} {'seconds':>8} {'rollouts/s':>11} {'vs local':>9}  identical")
        for name, secs, same in rows:
            print(f"{name:<28} {secs:8.2f} {len(records) / secs:11.1f} {local_s / secs:8.2f}x  {same}")
            ok &= same
        ray_rows = rows[1:]
        for name, secs, _ in ray_rows[1:]:
            print(f"scaling: {name} vs {ray_rows[0][0]}: {ray_rows[0][1] / secs:.2f}x")
    if args.warm_rollouts:
        ok &= warm_ratio(spec, args)
    ray.shutdown()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
