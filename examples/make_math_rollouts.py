"""Generate examples/math_rollouts.jsonl: a small GRPO-like batch of math rollouts (deterministic).

8 prompts x 8 rollouts with equivalent answer forms, wrong answers, missing answers, a truncated
rollout and one pathological LaTeX answer, so `rewardsmith score` shows every outcome.
Run: python examples/make_math_rollouts.py
"""

import json
import random
from pathlib import Path

PROBLEMS = [
    ("What is 1/2 + 1/4?", r"\frac{3}{4}", [r"\frac{3}{4}", "0.75", r"\frac{6}{8}"], ["0.5", r"\frac{1}{4}"]),
    ("Expand (x+1)^2 - 2x.", "x^2+1", ["x^2+1", "1+x^2"], ["x^2+2x+1", "x^2-1"]),
    ("Solve x^2 = 4.", r"\{-2, 2\}", [r"\{2,-2\}", r"\{-2,2\}"], ["2", r"\{4\}"]),
    ("Where is 1/x - 1 positive?", "(0,1)", ["(0,1)", r"(0, 1)"], ["[0,1]", r"(1,\infty)"]),
    ("Simplify sqrt(8)/4.", r"\frac{\sqrt{2}}{2}", [r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2"], [r"\sqrt{2}", "2"]),
    ("How many edges has a cube?", "12", ["12", "12.0"], ["8", "6"]),
    ("What is 10% of 250?", "25", ["25"], ["2.5", "250"]),
    ("Compute 2^{10}.", "1024", ["1024", "1,024"], ["2048", "1000"]),
]
FILLER = "Let me think step by step. "


def main(seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = []
    for p, (question, gold, right, wrong) in enumerate(PROBLEMS):
        for k in range(8):
            steps = rng.randint(2, 40)
            roll = rng.random()
            if roll < 0.55:
                answer = rng.choice(right)
            elif roll < 0.9:
                answer = rng.choice(wrong)
            else:
                answer = None
            body = FILLER * steps
            completion = f"<think>{body}</think> The answer is " + (rf"\boxed{{{answer}}}" if answer else "unclear.")
            rows.append(
                {
                    "prompt_id": f"q{p}",
                    "prompt": question,
                    "completion": completion,
                    "answer": gold,
                    "num_tokens": 12 + 7 * steps,
                    "truncated": False,
                    "step": 0,
                }
            )
    rows[5]["truncated"] = True
    rows[5]["completion"] = "<think>" + FILLER * 60
    rows[5]["num_tokens"] = 432
    rows[13]["completion"] = r"<think>hmm</think> \boxed{9^{9^{9^{9^{9^{9}}}}}}"
    out = Path(__file__).with_name("math_rollouts.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} rollouts to {out}")


if __name__ == "__main__":
    main()
