"""Generate examples/scored/{verbose,concise}.jsonl: two small simulated GRPO runs, scored by rewardsmith.

Both runs answer the same 8 addition prompts, 4 rollouts each, at steps 0-3 (deterministic).
``verbose``: thinking grows and loops ("Let me double-check.") over the steps and the
think/answer format is learned (pass rate 50% -> 100%) while accuracy stays flat — the format
bonus, not the task, drives the reward up. ``concise``: short thinking, stable format.
Both are scored with the spec below (exact answer + 0.5 x format + repetition penalty), so the
files are real ``rewardsmith score`` output for the analysis commands:

    rewardsmith audit examples/scored/verbose.jsonl
    rewardsmith eval tradeoff examples/scored/verbose.jsonl examples/scored/concise.jsonl --baseline verbose

Run: python examples/make_scored_rollouts.py
"""

import random
from pathlib import Path

from rewardsmith import load_spec, write_records

SPEC = {
    "verifier": "exact",
    "format": {"name": "think_answer", "mode": "add", "weight": 0.5},
    "shaping": [{"name": "repetition", "ngram": 3, "max_penalty": -0.2}],
    "length_unit": "tokens",
}
PROMPTS = [(a, b) for a, b in [(12, 7), (25, 17), (38, 44), (9, 91), (56, 28), (71, 13), (33, 66), (48, 52)]]
STEPS, ROLLOUTS = 4, 4
DIFFICULTY = {True: "carry", False: "no_carry"}


def thinking(rng: random.Random, a: int, b: int, loops: int) -> str:
    steps = [
        f"I need {a} plus {b}.",
        f"Tens first: {a // 10 * 10} and {b // 10 * 10}.",
        f"Then units: {a % 10} and {b % 10}.",
    ]
    return " ".join(steps + ["Let me double-check."] * loops + [f"So it is {a + b}."] * rng.randint(0, 1))


def rollout(rng: random.Random, run: str, step: int, p: int) -> dict:
    a, b = PROMPTS[p]
    if run == "verbose":
        loops, format_ok, acc = rng.randint(2 * step, 8 * step + 2), rng.random() < 0.5 + step / 6, 0.6
    else:
        loops, format_ok, acc = rng.randint(0, 1), rng.random() < 0.95, 0.65
    answer = a + b if rng.random() < acc else a + b + rng.choice([-10, -1, 1, 10])
    think = thinking(rng, a, b, loops)
    completion = f"<think>{think}</think>\nAnswer: {answer}" if format_ok else f"{think}\nAnswer: {answer}"
    return {
        "prompt_id": f"add{p}",
        "prompt": f"What is {a} + {b}?",
        "completion": completion,
        "answer": str(a + b),
        "num_tokens": int(1.3 * len(completion.split())) + 4,
        "truncated": False,
        "step": step,
        "meta": {"difficulty": DIFFICULTY[a % 10 + b % 10 >= 10]},
    }


def main(seed: int = 0) -> None:
    out_dir = Path(__file__).with_name("scored")
    with load_spec(SPEC) as pipe:
        for run in ("verbose", "concise"):
            rng = random.Random(f"{seed}-{run}")
            records = [
                rollout(rng, run, s, p) for s in range(STEPS) for p in range(len(PROMPTS)) for _ in range(ROLLOUTS)
            ]
            scored = []
            for s in range(STEPS):  # one scoring call per training step, as a trainer would
                batch = [r for r in records if r["step"] == s]
                scored += pipe.score(batch, step=s).to_records(batch)
            path = write_records(scored, out_dir / f"{run}.jsonl")
            print(f"wrote {len(scored)} scored rollouts to {path}")


if __name__ == "__main__":
    main()
