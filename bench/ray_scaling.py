"""Ray scaling: math scoring throughput with the local engine vs Ray with 1 and 2 actors.

Same GRPO-like batch as ``verify_throughput.py`` (``bench/_data.py``), each configuration a
fresh pipeline (no cache carried over), results checked identical to the local engine. On this
2-core machine Ray mostly shows its overhead; on a cluster pass ``--address auto`` (or
``ray://head:10001``) and ``--workers`` up to the cluster's CPUs.

    python bench/ray_scaling.py [--prompts 128 --rollouts 16] [--address auto] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import make_batch, to_records  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--rollouts", type=int, default=16)
    ap.add_argument("--pathological-rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--address", default=None)
    args = ap.parse_args()

    import ray

    from rewardsmith import load_spec
    from rewardsmith.integrations.ray_engine import score_records_ray

    records = to_records(make_batch(args.prompts, args.rollouts, args.pathological_rate, args.seed))
    spec = {"verifier": "math", "length_unit": "chars", "timeout_s": 5}
    rows = []
    pipe = load_spec({**spec, "workers": 2})
    t0 = time.perf_counter()
    expected = pipe.score_records(records)
    local_s = time.perf_counter() - t0
    pipe.close()
    rows.append(("local engine, 2 processes", local_s, True))
    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False)
    print(f"ray start-up: {time.perf_counter() - t0:.1f} s (not counted below)")
    for n in args.workers:
        t0 = time.perf_counter()
        scored, _ = score_records_ray(spec, records, workers=n)
        rows.append((f"ray, {n} actor{'s' if n > 1 else ''}", time.perf_counter() - t0, scored == expected))
    ray.shutdown()
    print(f"batch: {len(records)} rollouts ({args.prompts} prompts x {args.rollouts}); cold pipelines, actor start-up included")
    print(f"{'configuration':<28} {'seconds':>8} {'rollouts/s':>11} {'vs local':>9}  identical")
    for name, secs, same in rows:
        print(f"{name:<28} {secs:8.2f} {len(records) / secs:11.1f} {local_s / secs:8.2f}x  {same}")
    ray_rows = rows[1:]
    for (name, secs, _) in ray_rows[1:]:
        print(f"scaling: {name} vs {ray_rows[0][0]}: {ray_rows[0][1] / secs:.2f}x")


if __name__ == "__main__":
    main()
