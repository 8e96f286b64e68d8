"""Math verification throughput: rewardsmith's ``math`` verifier vs TRL's ``accuracy_reward``.

One run builds a GRPO-like batch (``bench/_data.py``: realistic answer forms, 2-4 distinct
answers per group, ~1% pathological LaTeX), then times, one after the other on the same cores:

(a) rewardsmith: a fresh ``load_spec({"verifier": "math", ..., "workers": 2, "timeout_s": 5})``
    pipeline scoring the whole batch — a cold run, worker start-up included, no cache carried
    over from anything else;
(b) TRL: ``trl.rewards.accuracy_reward`` over the same completions (conversational format),
    serially in the main thread as ``GRPOTrainer`` calls it (its signal timeouts active), in a
    subprocess that is killed at ``--trl-cap-s`` so the bench itself never hangs. It is called
    one item at a time — the same loop it runs over a batch, with math-verify's parse cache
    still shared across calls — so each item's time is known.

It also times (c) ``rewardsmith score`` as a user runs it (a fresh interpreter, start-up
included) and (d) a warm engine, as inside a trainer: one batch first (from seed + 1, every
answer/reference pair of the bench batch left out), then the bench batch timed; and the p99
per-item check time of integer and fraction answers in a warm verifier. Targets: cold CLI >= 4x
TRL, warm >= 10x TRL, p99 <= 50 ms.

(c) and (d) are reported twice: on the whole batch and on its *ordinary subset*, the items TRL
decided within ``ORDINARY_S`` (50 ms) each in this run. Both sides are timed on exactly those
items (the CLI and the warm engine score the subset alone), so TRL's slow items (its own 10 s
timeouts on pathological LaTeX) cannot carry the ratio: the subset figure is the typical one.

It prints both throughputs (rollouts/s), their ratio against the target (>= 4x TRL on 2 cores,
no item longer than timeout + 1 s), how often the two agree on items both scored (and up to
five disagreements with their answers, for a human to judge), and each side's slowest item.

    python bench/verify_throughput.py             # 256 prompts x 16 rollouts
    python bench/verify_throughput.py --quick     # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import Rollout, make_batch, to_records  # noqa: E402

TARGET_RATIO = 4.0  # cold: the CLI, start-up included
TARGET_WARM_RATIO = 10.0  # steady state: a warm engine
TARGET_P99_MS = 50.0
TIMEOUT_S = 5.0
WORKERS = 2
TRL_MEMORY_LIMIT_BYTES = 8 * 2**30  # a runaway big-integer power must not take the shared machine down
TRL_IMPORT_LIMIT_S = 180.0
ORDINARY_S = 0.05  # the ordinary subset: items TRL decided within this many seconds each


# --------------------------------------------------------------------------- rewardsmith
@dataclass
class RewardsmithRun:
    seconds: float
    correct: list[float]  # 1.0 / 0.0 / NaN (unknown)
    status: list[str]
    extracted: list[str | None]
    stats: dict
    startup_s: float


def run_rewardsmith(records: list[dict]) -> RewardsmithRun:
    from rewardsmith import load_spec
    from rewardsmith.verifiers.math import MathVerifier

    spec = {"verifier": "math", "length_unit": "chars", "workers": WORKERS, "timeout_s": TIMEOUT_S}
    t0 = time.perf_counter()
    pipe = load_spec(spec)
    scores = pipe.score(records)
    seconds = time.perf_counter() - t0
    stats = dict(vars(pipe.engine.stats))
    pipe.close()
    # Start-up alone, measured apart on another fresh pipeline (one trivial record; no shared cache).
    t0 = time.perf_counter()
    with load_spec(spec) as probe:
        probe.score([{"prompt_id": "startup", "completion": r"\boxed{1}", "answer": "1"}])
    startup_s = time.perf_counter() - t0
    verifier = MathVerifier()
    extracted = [verifier.extract(r["completion"]) for r in records]
    return RewardsmithRun(seconds, scores.correct.tolist(), list(scores.status), extracted, stats, startup_s)


@dataclass
class SteadyRun:
    n: int
    seconds: float
    p99_ms: dict[str, float]  # answer kind -> p99 per-item check time in a warm verifier (ms)


def disjoint_batch(first: list[Rollout], prompts: int, rollouts: int, rate: float, seed: int) -> list[Rollout]:
    """A batch from ``seed`` without any (answer, reference) pair of ``first`` (so no verdict is cached)."""
    seen = {(r.answer, r.reference) for r in first}
    return [r for r in make_batch(prompts, rollouts, rate, seed) if (r.answer, r.reference) not in seen]


def run_steady(first: list[dict], second: list[Rollout], per_item: bool = True) -> SteadyRun:
    """A warm engine, as inside a trainer: one batch first (``first``), then ``second`` timed.

    The p99 per item (``per_item``) is measured apart, in this process, on ``second``'s unique
    integer and fraction jobs after the verifier's warm-up: the code a warm worker runs, timed item by item.
    """
    from rewardsmith import load_spec
    from rewardsmith.verifiers.math import MathVerifier

    spec = {"verifier": "math", "length_unit": "chars", "workers": WORKERS, "timeout_s": TIMEOUT_S}
    with load_spec(spec) as pipe:
        pipe.score(first)
        t0 = time.perf_counter()
        pipe.score(to_records(second))
        seconds = time.perf_counter() - t0
    if not per_item:
        return SteadyRun(len(second), seconds, {})
    verifier = MathVerifier()
    verifier.warm_up()
    times: dict[str, list[float]] = {"integer": [], "fraction": []}
    seen: set[str] = set()
    for r in second:
        job = verifier.job(r.completion, r.reference, {})
        if r.kind not in times or job is None or job.key in seen:
            continue
        seen.add(job.key)
        t = time.perf_counter()
        verifier.check(job)
        times[r.kind].append(time.perf_counter() - t)
    p99 = {k: 1e3 * sorted(v)[min(len(v) - 1, int(0.99 * len(v)))] for k, v in times.items() if v}
    return SteadyRun(len(second), seconds, p99)


def run_cli(records: list[dict]) -> float:
    """Wall time of ``rewardsmith score`` as a user runs it: a fresh interpreter, start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        rollouts, spec = Path(tmp, "rollouts.jsonl"), Path(tmp, "spec.json")
        rollouts.write_text("".join(json.dumps(r) + "\n" for r in records))
        spec.write_text(
            json.dumps({"verifier": "math", "length_unit": "chars", "workers": WORKERS, "timeout_s": TIMEOUT_S})
        )
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rewardsmith",
                "score",
                str(rollouts),
                "--spec",
                str(spec),
                "-o",
                str(Path(tmp, "out.jsonl")),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- TRL (child process)
def trl_worker(path: str) -> None:
    """Child: ``accuracy_reward`` item by item in the main thread; one JSON line per item."""
    resource.setrlimit(resource.RLIMIT_AS, (TRL_MEMORY_LIMIT_BYTES, TRL_MEMORY_LIMIT_BYTES))
    import logging

    logging.disable(logging.WARNING)  # math-verify logs every timeout
    from trl.rewards import accuracy_reward

    items = [json.loads(line) for line in Path(path).read_text().splitlines()]
    print(json.dumps({"ready": True}), flush=True)
    for i, item in enumerate(items):
        logged: dict[str, list] = {}
        t0 = time.perf_counter()
        try:
            reward = accuracy_reward(
                completions=[[{"role": "assistant", "content": item["completion"]}]],
                solution=[item["solution"]],
                log_extra=logged.__setitem__,
            )[0]
            error = None
        except Exception as exc:  # TRL would crash the step; here it is counted
            reward, error = None, f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - t0
        parsed = logged.get("answer_parsed", [""])[0]
        print(json.dumps({"i": i, "reward": reward, "s": seconds, "parsed": parsed[:200], "error": error}), flush=True)


@dataclass
class TrlRun:
    rewards: dict[int, float | None] = field(default_factory=dict)  # finished items only
    parsed: dict[int, str] = field(default_factory=dict)
    item_s: dict[int, float] = field(default_factory=dict)
    errors: int = 0
    capped: bool = False
    stuck_item: int | None = None  # the item running when the cap hit
    stuck_s: float = 0.0
    failure: str = ""


def trl_solution(reference: str, form: str) -> str:
    """The reference as TRL gets it: ``$...$``-delimited (``dollar``) or as stored (``raw``).

    TRL parses ``solution`` with math-verify's default extraction, which needs LaTeX delimiters
    for anything beyond a plain number: raw ``x^2+1``, ``\\{1,2\\}``, ``[0,1)`` or
    ``\\frac{\\sqrt{2}}{2}`` come back unparseable (reward None) and raw ``4\\pi`` reads as 4.
    """
    return f"${reference}$" if form == "dollar" else reference


def run_trl(batch: list[Rollout], cap_s: float, solution_form: str) -> TrlRun:
    """Run the child, collect per-item results, kill it at ``cap_s`` s of scoring."""
    out = TrlRun()
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in batch:
            f.write(
                json.dumps({"completion": r.completion, "solution": trl_solution(r.reference, solution_form)}) + "\n"
            )
        items_path = f.name
    proc = subprocess.Popen(
        [sys.executable, __file__, "--trl-worker", items_path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    fd = proc.stdout.fileno()
    started = time.perf_counter()
    loop_start: float | None = None
    last_done = 0.0
    pending = b""
    try:
        while True:
            now = time.perf_counter()
            deadline = (loop_start + cap_s) if loop_start is not None else (started + TRL_IMPORT_LIMIT_S)
            if now >= deadline:
                if loop_start is None:
                    out.failure = f"TRL did not start within {TRL_IMPORT_LIMIT_S:g} s"
                else:
                    out.capped = True
                    out.stuck_item = len(out.rewards)
                    out.stuck_s = now - last_done
                break
            if not select.select([fd], [], [], deadline - now)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # child exited: finished, or died (e.g. at the memory limit)
                if len(out.rewards) < len(batch):
                    out.failure = f"TRL's process exited (rc={proc.wait()}) after {len(out.rewards)} items"
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                msg = json.loads(line)
                if "ready" in msg:
                    loop_start = last_done = time.perf_counter()
                    continue
                i = msg["i"]
                out.rewards[i], out.parsed[i], out.item_s[i] = msg["reward"], msg["parsed"], msg["s"]
                out.errors += msg["error"] is not None
                last_done = time.perf_counter()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        os.unlink(items_path)
    return out


# --------------------------------------------------------------------------- report
def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def _verdict(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "unknown"
    return "correct" if x >= 1.0 else "wrong"


def _short(text: str | None, n: int = 70) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= n else text[: n - 20] + f"...<{len(text)} chars>"


def report(
    args: argparse.Namespace, batch: list[Rollout], rk: RewardsmithRun, trl: TrlRun, load: tuple[float, float]
) -> None:
    n = len(batch)
    n_patho = sum(r.pathological for r in batch)
    print(
        f"batch: {args.prompts} prompts x {args.rollouts} rollouts = {n} completions (seed {args.seed}); "
        f"{n_patho} with pathological LaTeX ({n_patho / n:.1%}), {sum(not r.boxed for r in batch)} without a boxed "
        "answer"
    )
    print(
        f"machine: {os.cpu_count()} CPU cores, SHARED with other jobs (load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after); "
        "the two systems ran one after the other"
    )

    rk_rate = _rate(n, rk.seconds)
    s = rk.stats
    print(
        f"\n(a) rewardsmith math, workers={WORKERS}, timeout_s={TIMEOUT_S:g}, cold (fresh pipeline, worker start-up "
        "included):"
    )
    print(f"    {n} rollouts in {rk.seconds:.2f} s -> {rk_rate:.1f} rollouts/s")
    print(
        f"    engine: {s['checked']} verified, {s['deduped']} deduped, {s['cache_hits']} cache hits, "
        f"{s['timeouts']} timeouts, {s['errors']} errors, {s['workers_replaced']} workers replaced"
    )
    limit = TIMEOUT_S + 1.0
    print(
        f"    slowest item: {s['slowest_s']:.2f} s (target <= timeout + 1 s = {limit:g} s: "
        f"{'PASS' if s['slowest_s'] <= limit else 'FAIL'})"
    )
    print(f"    worker start-up alone (separate fresh pipeline, 1 record): {rk.startup_s:.2f} s")

    done = len(trl.rewards)
    item_total = sum(trl.item_s.values())
    print(
        "\n(b) TRL accuracy_reward, serial in the main thread (its signal timeouts active), subprocess, references "
        f"{args.trl_solution}:"
    )
    if trl.failure:
        print(f"    NOTE: {trl.failure}")
    if trl.capped:
        print(
            f"    CAPPED at {args.trl_cap_s:g} s: finished {done}/{n} items; item #{trl.stuck_item} had been running "
            f"{trl.stuck_s:.1f} s"
        )
        print(
            f"    throughput below is over the {done} finished items only ({item_total:.2f} s of item time; the "
            "unfinished item's time is left out)"
        )
    trl_rate = _rate(done, item_total)
    print(
        f"    {done} rollouts in {item_total:.2f} s -> {trl_rate:.1f} rollouts/s"
        + (
            f"   (over the whole {args.trl_cap_s:g} s cap: {_rate(done, args.trl_cap_s):.1f} rollouts/s)"
            if trl.capped
            else ""
        )
    )
    patho_s = [t for i, t in trl.item_s.items() if batch[i].pathological]
    print(
        f"    of which {len(patho_s)} finished pathological items took {sum(patho_s):.2f} s, the other "
        f"{done - len(patho_s)} items {item_total - sum(patho_s):.2f} s"
    )
    if trl.item_s:
        slow_i = max(trl.item_s, key=trl.item_s.get)
        print(
            f"    slowest item: {trl.item_s[slow_i]:.2f} s (#{slow_i}, answer {_short(batch[slow_i].answer, 50)!s})"
            + (f"; the unfinished item ran >= {trl.stuck_s:.1f} s" if trl.capped else "")
        )
    if trl.errors:
        print(f"    {trl.errors} items raised (a trainer would crash on them)")

    ratio = rk_rate / trl_rate if done and trl_rate > 0 else float("nan")
    verdict = "n/a" if math.isnan(ratio) else ("PASS" if ratio >= TARGET_RATIO else "FAIL")
    note = " [TRL capped: ratio uses TRL's finished items only, which flatters TRL]" if trl.capped else ""
    print(f"\nratio rewardsmith/TRL: {ratio:.2f}x (target >= {TARGET_RATIO:g}x TRL on 2 cores: {verdict}){note}")

    both = [i for i in range(n) if i in trl.rewards and trl.rewards[i] is not None and not math.isnan(rk.correct[i])]
    differ = [i for i in both if rk.correct[i] != trl.rewards[i]]
    agree = 1 - len(differ) / len(both) if both else float("nan")
    print(f"agreement on the {len(both)} items both scored: {agree:.2%} ({len(differ)} disagree)")
    boxed_both = [i for i in both if batch[i].boxed]
    boxed_differ = [i for i in boxed_both if rk.correct[i] != trl.rewards[i]]
    if boxed_both:
        print(
            f"agreement where both read a boxed answer ({len(boxed_both)} items): "
            f"{1 - len(boxed_differ) / len(boxed_both):.2%} (target >= 99%)"
        )
    boxed = [i for i in both if batch[i].boxed]
    if boxed:
        rk_ok = sum((rk.correct[i] == 1.0) == batch[i].expected for i in boxed) / len(boxed)
        trl_ok = sum((trl.rewards[i] == 1.0) == batch[i].expected for i in boxed) / len(boxed)
        print(
            f"match with the labels the batch was built with (boxed answers, {len(boxed)} items): rewardsmith "
            f"{rk_ok:.2%}, TRL {trl_ok:.2%}"
        )
    unknown = sum(math.isnan(c) for c in rk.correct)
    trl_none = sum(1 for r in trl.rewards.values() if r is None)
    print(
        f"not scored: rewardsmith {unknown} (statuses: {_count(rk.status, exclude=('ok', 'no_answer'))}), TRL "
        f"{trl_none} None + {n - done} unfinished"
    )
    if differ:
        print("disagreements (up to 5; boxed answers and one per answer kind first):")
        for i in _diverse(sorted(differ, key=lambda i: not batch[i].boxed), batch)[:5]:
            r = batch[i]
            print(
                f"  #{i} [{r.kind}] reference {_short(r.reference)!s} | answer {_short(r.answer)!s} (boxed={r.boxed}, "
                f"built as {'correct' if r.expected else 'wrong'})"
            )
            print(
                f"      rewardsmith: {_verdict(rk.correct[i])} ({rk.status[i]}; extracted "
                f"{_short(rk.extracted[i])!s}) | TRL: {_verdict(trl.rewards[i])} (parsed {_short(trl.parsed[i])!s})"
            )


def _count(values: list[str], exclude: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        if v not in exclude:
            counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _diverse(indices: list[int], batch: list[Rollout]) -> list[int]:
    """Indices reordered: a new answer kind first, then a new (kind, answer) pair, then repeats."""
    kinds: set[str] = set()
    pairs: set[tuple[str, str | None]] = set()
    tiers: tuple[list[int], list[int], list[int]] = ([], [], [])
    for i in indices:
        kind, pair = batch[i].kind, (batch[i].kind, batch[i].answer)
        tiers[0 if kind not in kinds else 1 if pair not in pairs else 2].append(i)
        kinds.add(kind)
        pairs.add(pair)
    return tiers[0] + tiers[1] + tiers[2]


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=None, help="prompts (groups); default 256, 8 with --quick")
    ap.add_argument("--rollouts", type=int, default=None, help="rollouts per prompt; default 16, 4 with --quick")
    ap.add_argument(
        "--pathological-rate", type=float, default=0.01, help="share of completions with pathological LaTeX"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--trl-cap-s",
        type=float,
        default=None,
        help="wall-clock cap on TRL's scoring loop; default 1200, 20 with --quick",
    )
    ap.add_argument(
        "--trl-solution",
        choices=("dollar", "raw"),
        default="dollar",
        help="references given to TRL wrapped in $...$ (default) or raw",
    )
    ap.add_argument("--quick", action="store_true", help="a small batch for a smoke run")
    ap.add_argument("--trl-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.prompts = args.prompts or (8 if args.quick else 256)
    args.rollouts = args.rollouts or (4 if args.quick else 16)
    args.trl_cap_s = args.trl_cap_s or (20.0 if args.quick else 1200.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trl_worker:
        trl_worker(args.trl_worker)
        return 0
    batch = make_batch(args.prompts, args.rollouts, args.pathological_rate, args.seed)
    load_before = os.getloadavg()[0]
    records = to_records(batch)
    first = to_records(disjoint_batch(batch, args.prompts, args.rollouts, args.pathological_rate, args.seed + 1))
    trl = run_trl(batch, args.trl_cap_s, args.trl_solution)
    ordinary = ordinary_items(trl)
    cli_s = run_cli(records)
    cli_ordinary_s = run_cli([records[i] for i in ordinary]) if ordinary else float("nan")
    rk = run_rewardsmith(records)
    steady = run_steady(first, batch)
    steady_ordinary = run_steady(first, [batch[i] for i in ordinary], per_item=False) if ordinary else None
    report(args, batch, rk, trl, (load_before, os.getloadavg()[0]))
    print(f"\n== the whole batch ({len(batch)} items) ==")
    report_targets(list(range(len(batch))), cli_s, steady, trl)
    kept = set(ordinary)
    n_patho = sum(r.pathological for i, r in enumerate(batch) if i not in kept)
    print(
        f"\n== the ordinary subset: the {len(ordinary)} items TRL decided within {ORDINARY_S * 1e3:g} ms each in this "
        f"run (both sides timed on exactly these items; left out: {len(batch) - len(ordinary)}, of which "
        f"{n_patho} with pathological LaTeX and {len(batch) - len(ordinary) - n_patho} others TRL finished "
        "later or never) =="
    )
    if steady_ordinary is None:
        print("no item qualifies: no subset figures")
    else:
        report_targets(ordinary, cli_ordinary_s, steady_ordinary, trl)
    for kind, ms in steady.p99_ms.items():
        print(
            f"p99 per item in a warm verifier, {kind} answers: {ms:.1f} ms (target <= {TARGET_P99_MS:g} ms: "
            f"{'PASS' if ms <= TARGET_P99_MS else 'FAIL'})"
        )
    return 0


def ordinary_items(trl: TrlRun) -> list[int]:
    """The indices of the items TRL finished within ``ORDINARY_S`` each, in batch order."""
    return sorted(i for i, s in trl.item_s.items() if s <= ORDINARY_S)


def report_targets(items: list[int], cli_s: float, steady: SteadyRun, trl: TrlRun) -> None:
    """The cold and warm targets on ``items`` (indices of the bench batch) against TRL's rate on the same
    items, all measured in this run. TRL's unfinished items (capped) are left out of its rate."""
    timed = [i for i in items if i in trl.item_s]
    trl_rate = _rate(len(timed), sum(trl.item_s[i] for i in timed))
    n = len(items)
    cli_ratio = _rate(n, cli_s) / trl_rate
    warm_ratio = _rate(steady.n, steady.seconds) / trl_rate
    print(f"TRL accuracy_reward on these items: {trl_rate:.1f} rollouts/s ({len(timed)} finished)")
    print(
        f"cold CLI  `rewardsmith score` (fresh interpreter, start-up included): {n} rollouts in {cli_s:.2f} s -> "
        f"{_rate(n, cli_s):.1f} rollouts/s = {cli_ratio:.2f}x TRL (target >= {TARGET_RATIO:g}x: "
        f"{'PASS' if cli_ratio >= TARGET_RATIO else 'FAIL'})"
    )
    print(
        f"warm engine (after a batch from another seed, no shared answer/reference pair): {steady.n} rollouts in "
        f"{steady.seconds:.2f} s -> {_rate(steady.n, steady.seconds):.1f} rollouts/s = {warm_ratio:.2f}x TRL "
        f"(target >= {TARGET_WARM_RATIO:g}x: {'PASS' if warm_ratio >= TARGET_WARM_RATIO else 'FAIL'})"
    )


if __name__ == "__main__":
    sys.exit(main())
