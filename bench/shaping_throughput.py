"""Length-shaper throughput: rollouts/s of every length shaper on one large synthetic GRPO batch.

The batch (default 62,500 groups × 16 = 1M rollouts) has random token lengths (1-8192), a
per-group accuracy drawn uniformly so every difficulty bucket occurs, 5% unknown verdicts, 5%
unanswered and 2% truncated rollouts, and completions drawn from a small pool of short
think/answer texts (format_length and laser_de read the text; their cost grows with its length:
``--text-words`` pads every completion).
Each shaper's ``apply`` is timed on a prebuilt ``ShapingContext`` — building the batch and
verifying are not part of it — once untimed (so HAPO has a history for every prompt and LASER-D
chosen targets), then ``--repeats`` times with the state carried over; the median counts.
Target: 1M rollouts/s.

    python bench/shaping_throughput.py                 # 1M rollouts
    python bench/shaping_throughput.py --groups 500    # quick run
    python bench/shaping_throughput.py --text-words 1000 --only laser_de --only format_length
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rewardsmith.batch import Batch
from rewardsmith.components import build
from rewardsmith.shaping import BaseValues, ShapingContext

TARGET = 1_000_000  # rollouts/s
MAX_TOKENS = 8192

SHAPERS: dict[str, dict] = {
    "kimi": {},
    "cosine": {"max_len": MAX_TOKENS, "exceed_penalty": -10.0},
    "dapo_overlong": {"max_len": MAX_TOKENS, "buffer": 4096},
    "truncation": {"max_len": 4000, "no_eos_coef": 0.1},
    "laser": {"target": 4096},
    "laser_d": {"lower": 1024, "upper": MAX_TOKENS, "interval": 1024},
    "laser_de": {"lower": 1024, "upper": MAX_TOKENS, "interval": 1024},
    "hapo": {},
    "grpo_lambda": {},
    "l1_exact": {"target": 4096},
    "l1_max": {"target": 4096},
    "efficient_reasoning": {},
    "format_length": {"max_len": MAX_TOKENS},
    "budget_curriculum": {"start": MAX_TOKENS, "end": 2048, "every": 10, "apply": "truncation"},
}

_TEXTS = (
    "<think>First, 12 + 30 = 42. Let me double-check: 42 - 30 = 12.</think> The answer is \\boxed{42}.",
    "<think>We need the sum. Wait, that does not look right. Let me reconsider the second step.</think> \\boxed{41}",
    "<think>Substituting back, both sides agree, so the condition holds for every value.</think> So the answer is 7.",
    "<think>Hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm",
    "The two cases together cover all possibilities, so we combine them: \\boxed{\\frac{3}{4}}",
    "<think>check check check check the the the the same same same same step step step step</think> \\boxed{5}",
)


def make_context(groups: int, size: int, seed: int, text_words: int = 0) -> ShapingContext:
    rng = np.random.default_rng(seed)
    filler = " ".join(f"w{i % 997}" for i in range(text_words))  # varied words: not a repetition
    pool = [t.replace("<think>", f"<think>{filler} ", 1) if filler else t for t in _TEXTS]
    n = groups * size
    group_ids = [f"p{g}" for g in range(groups) for _ in range(size)]
    acc = np.repeat(rng.random(groups), size)
    correct = (rng.random(n) < acc).astype(np.float64)
    correct[rng.random(n) < 0.05] = np.nan
    answered = rng.random(n) >= 0.05
    correct[~answered] = 0.0
    length = rng.integers(1, MAX_TOKENS + 1, size=n).astype(np.float64)
    truncated = rng.random(n) < 0.02
    texts = [pool[i] for i in rng.integers(0, len(pool), size=n)]
    batch = Batch(
        prompt_ids=group_ids,
        prompts=[""] * n,
        completions=texts,
        answers=["42"] * n,
        num_tokens=length,
        truncated=truncated,
        data_sources=[None] * n,
        steps=np.full(n, -1),
        metas=[{} for _ in range(n)],
    )
    bv = BaseValues(1.0, -0.5, -1.0)
    base = np.where(~answered, bv.no_answer, np.where(correct == 1.0, bv.correct, bv.wrong))
    return ShapingContext(
        batch, base.copy(), base, correct, length, "tokens", answered, np.ones(n, dtype=bool), 0, bv, {}
    )


def time_shaper(name: str, options: dict, ctx: ShapingContext, repeats: int) -> tuple[float, bool]:
    """Median seconds of ``repeats`` calls after one untimed warm-up call (steps 1..repeats, the
    state carried over), and whether every output was finite."""
    shaper = build("shaper", {"name": name, **options}, field=name)
    state: dict = {}
    times = []
    finite = True
    for step in range(repeats + 1):
        run_ctx = ShapingContext(
            ctx.batch,
            ctx.reward,
            ctx.base,
            ctx.correct,
            ctx.length,
            ctx.unit,
            ctx.answered,
            ctx.format_ok,
            step,
            ctx.base_values,
            state,
        )
        t0 = time.perf_counter()
        new, comp = shaper.apply(run_ctx)  # type: ignore[attr-defined]
        if step:
            times.append(time.perf_counter() - t0)
        finite &= bool(np.isfinite(new).all() and np.isfinite(comp).all())
    return float(np.median(times)), finite


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=62_500)
    ap.add_argument("--group-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--text-words",
        type=int,
        default=0,
        help="words of filler added to each completion's thinking (text-reading shapers slow down)",
    )
    ap.add_argument("--only", action="append", choices=sorted(SHAPERS), help="time only these shapers")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ctx = make_context(args.groups, args.group_size, args.seed, args.text_words)
    n = len(ctx.length)
    print(
        f"batch: {args.groups} groups x {args.group_size} = {n} rollouts (built in {time.perf_counter() - t0:.1f} s); median of {args.repeats} after a warm-up call"
    )
    print(f"{'shaper':<20} {'seconds':>9} {'rollouts/s':>13} {'vs 1M/s':>8}  output")
    below = []
    for name in args.only or SHAPERS:
        seconds, finite = time_shaper(name, SHAPERS[name], ctx, args.repeats)
        rate = n / seconds if seconds > 0 else float("inf")
        ratio = rate / TARGET
        if ratio < 1.0:
            below.append(name)
        print(f"{name:<20} {seconds:>9.4f} {rate:>13,.0f} {ratio:>7.2f}x  {'finite' if finite else 'NaN/inf!'}")
    print(f"target: >= 1.00x ({TARGET:,} rollouts/s); below target: {', '.join(below) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
