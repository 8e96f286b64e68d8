"""STARC distances between length-penalty designs on a toy "keep thinking / answer" MDP.

States: thinking step t = 0..T, then two absorbing states, answered-correct and answered-wrong.
At step t the policy either thinks (t -> t+1; thinking past the budget T ends wrong, as a
truncated rollout) or answers (correct with probability p[t], which grows with diminishing
returns). Each reward design is an array R[s, a, s']; the script prints the STARC distance
between every pair (EPIC canonicalisation and value-adjusted levelling) and what an optimal
policy does under each design. Its output is the worked example in docs/analysis.md.

Run: python examples/starc_length_penalties.py
"""

import numpy as np

from rewardsmith.analysis.starc import potential_shaped, starc_distance

T = 4  # thinking budget (steps)
P_CORRECT = [0.30, 0.55, 0.70, 0.78, 0.82]  # accuracy when answering after t thinking steps
GAMMA = 0.95
THINK, ANSWER = 0, 1
CORRECT, WRONG = T + 1, T + 2
N_STATES = T + 3


def transitions() -> np.ndarray:
    tau = np.zeros((N_STATES, 2, N_STATES))
    for t in range(T + 1):
        tau[t, THINK, t + 1 if t < T else WRONG] = 1.0
        tau[t, ANSWER, CORRECT] = P_CORRECT[t]
        tau[t, ANSWER, WRONG] = 1.0 - P_CORRECT[t]
    tau[CORRECT, :, CORRECT] = tau[WRONG, :, WRONG] = 1.0
    return tau


def reward(correct_value) -> np.ndarray:
    """R[t, answer, correct] = correct_value(t); every other transition 0."""
    R = np.zeros((N_STATES, 2, N_STATES))
    for t in range(T + 1):
        R[t, ANSWER, CORRECT] = correct_value(t)
    return R


def designs() -> dict[str, np.ndarray]:
    correctness = reward(lambda t: 1.0)
    step_cost = correctness.copy()
    step_cost[: T + 1, THINK, :] -= 0.05  # a cost per thinking step, paid as it is spent
    return {
        "correctness": correctness,
        "step cost 0.05": step_cost,
        "length-discounted": reward(lambda t: 1.0 - 0.5 * t / T),  # correct answers are worth less the longer they took
        "LASER bonus (t<=2)": reward(lambda t: 1.0 + 0.5 * (t <= 2)),  # LASER-style +α under the target
        "truncation (t<=2)": reward(lambda t: 1.0 if t <= 2 else 0.0),  # ThinkPrune-style budget
        "correctness, shaped": potential_shaped(
            correctness, np.array([-0.1 * t for t in range(T + 1)] + [0.0, 0.0]), GAMMA
        ),
    }


def optimal_policy(R: np.ndarray, tau: np.ndarray) -> tuple[int, float]:
    """Value iteration from t = 0: (thinking steps before answering, accuracy) of the optimal policy."""
    v = np.zeros(N_STATES)
    for _ in range(2000):
        q = (tau * (R + GAMMA * v[None, None, :])).sum(axis=2)
        v = q.max(axis=1)
    q = (tau * (R + GAMMA * v[None, None, :])).sum(axis=2)
    t = 0
    while t <= T and q[t, THINK] > q[t, ANSWER] + 1e-12:
        t += 1
    return t, (P_CORRECT[t] if t <= T else 0.0)


def main() -> None:
    tau = transitions()
    ds = designs()
    names = list(ds)
    print("| design | optimal policy thinks | its accuracy |")
    print("|---|---|---|")
    for name in names:
        steps, acc = optimal_policy(ds[name], tau)
        print(f"| {name} | {steps} steps | {acc:.2f} |")
    for canonical in ("epic", "val"):
        print(f"\nSTARC distance ({canonical}, γ = {GAMMA}, range [0, 2]):\n")
        print("| | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for a in names:
            row = [starc_distance(ds[a], ds[b], GAMMA, tau, canonical) for b in names]
            print(f"| {a} | " + " | ".join(f"{d:.3f}" for d in row) + " |")


if __name__ == "__main__":
    main()
