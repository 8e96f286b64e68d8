"""The lab's built-in comparison set, as rewardsmith spec dicts (also in ``examples/specs/lab/``).

All use the task's verifier (``exact`` on the answer after ``####``) and count length in
tokens (TRL's ``completion_ids``, EOS included). Targets and budgets are in tokens of the slip
tasks, carry and rounding (:mod:`rewardsmith.lab.tasks`): the steps of a k-term chain take
6k − 1 tokens and each slipped step needs a 7-token repairing check, so the necessary length is
11 tokens for k = 2 and 41, 48, 55 or 62 for k = 7 (no, one, two or three slips; 62 is the
longest in the held-out sets of seeds 0–2 of both tasks; four slips — 69 tokens — happen to fewer
than 1 in 1,000 k = 7 problems in the carry task and 1 in 625 in the rounding task). The verbose
base policy writes about 1.6× the necessary length.

Budgets are set at :data:`HARD_BUDGET` = 64 tokens, at or above the necessary length of every
held-out hardest problem, so a spec that loses hard problems loses them to its reward, not to
an impossible budget:

- ``truncation`` (ThinkPrune/DLER hard budget) and ``dler`` (the same budget with DLER's batch
  normalization: group-mean baseline, batch std; methods.md §1 DLER) score a rollout over 64
  tokens as wrong;
- ``l1_max`` (L1-Max, Aggarwal & Welleck 2025, Eq. 2) with target 64 and α = 0.03: a correct
  rollout's reward is ``clip(0.015·(64 − L) + 0.5, 0, 1)``, 0.5 at the budget, 1 at ≤ 31 tokens —
  a uniform pull towards short answers at every difficulty (the authors' α = 3e-4 is for budgets
  in the thousands of tokens);
- ``laser`` (LASER, +0.5 at ≤ the target) at 64; ``format_length`` (label-free) caps at 64;
- ``laser_d`` picks its targets per difficulty bucket from 12 to 128 tokens in steps of 6, every 5
  steps; kimi, hapo and grpo_lambda have no budget (group- or history-relative).

Beyond the length rewards: ``drpo`` (DRPO's objective with its built-in length preference),
``pear`` and ``sar`` (rewards from the policy's own signals: ``signals: {model: policy}`` is the
policy being trained, see :mod:`rewardsmith.lab.train`), and the reward-model specs ``rm_concise``,
``rm_biased_raw``, ``rm_biased_par`` (``path: lab-rm:<kind>``: an RM the lab trains, see
:mod:`rewardsmith.lab.reward_models`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .evaluate import TASK_VERIFIER
from .reward_models import LAB_RM_PREFIX
from .train import POLICY_SIGNALS

BASELINE = "correctness"


@dataclass(frozen=True)
class NamedSpec:
    name: str
    spec: dict[str, Any]
    source: str  # "built-in" or the file it came from


def _spec(name: str, *shaping: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "verifier": dict(TASK_VERIFIER), "length_unit": "tokens", "shaping": list(shaping), **extra}


def _rm_spec(name: str, kind: str, *shaping: dict[str, Any]) -> dict[str, Any]:
    """A spec whose reward is the lab RM ``kind``'s score (no rule verifier)."""
    verifier = {"name": "reward_model", "path": LAB_RM_PREFIX + kind}
    return {"name": name, "verifier": verifier, "length_unit": "tokens", "shaping": list(shaping)}


HARD_BUDGET = 64  # tokens: at or above the hardest held-out problems' necessary length (see above)


BUILTIN_SPECS: dict[str, dict[str, Any]] = {
    BASELINE: _spec(BASELINE),
    "kimi": _spec("kimi", {"name": "kimi"}),
    "l1_max": _spec("l1_max", {"name": "l1_max", "target": HARD_BUDGET, "alpha": 0.03}),
    "truncation": _spec("truncation", {"name": "truncation", "max_len": HARD_BUDGET}),
    "laser": _spec("laser", {"name": "laser", "target": HARD_BUDGET}),
    "laser_d": _spec(
        "laser_d", {"name": "laser_d", "lower": 12, "upper": 128, "interval": 6, "update_every": 5, "anchor": None}
    ),
    "hapo": _spec("hapo", {"name": "hapo"}),
    "grpo_lambda": _spec("grpo_lambda", {"name": "grpo_lambda"}),
    "dler": _spec("dler", {"name": "truncation", "max_len": HARD_BUDGET}, advantage={"name": "batch_std"}),
    "format_length": {
        "name": "format_length",
        "verifier": dict(TASK_VERIFIER),
        "length_unit": "tokens",
        "shaping": [{"name": "format_length", "max_len": HARD_BUDGET, "answer_from": "hash"}],
    },
    # DRPO (Li et al. 2025): correctness, trained with DRPO's objective, whose length preference is its
    # weights softmax((1 - L/L_max)/lam) over a group's correct rollouts (L_max = max_completion_length).
    "drpo": _spec("drpo", objective={"name": "drpo", "lam": 0.1, "tau": 10.0, "delta": 1e-4, "beta": 1000.0}),
    # PEAR: correctness minus 0.1 x the mean thinking-phase entropy of the policy (formula unverified).
    "pear": _spec("pear", {"name": "pear", "think_coef": 0.1}, signals={"model": POLICY_SIGNALS}),
    # SAR (Han et al. 2025): correctness + 0.2 x self-aligned reward (the authors' GRPO scripts' factor).
    "sar": _spec("sar", {"name": "sar", "coef": 0.2}, signals={"model": POLICY_SIGNALS}),
    "rm_concise": _rm_spec("rm_concise", "concise"),
    "rm_biased_raw": _rm_spec("rm_biased_raw", "biased"),
    "rm_biased_par": _rm_spec("rm_biased_par", "biased", {"name": "par"}),
}
BUILTIN_NAMES = tuple(BUILTIN_SPECS)
# run only when named (--only, or a preset's list): RL objectives, policy signals and lab-trained RMs
EXTRA_NAMES = ("drpo", "pear", "sar", "rm_concise", "rm_biased_raw", "rm_biased_par")
DEFAULT_NAMES = tuple(n for n in BUILTIN_NAMES if n not in EXTRA_NAMES)


def select_specs(only: Sequence[str], user: Sequence[tuple[str, dict[str, Any], str]]):
    """The built-in specs (those in ``only`` plus the baseline; without ``only`` the length comparison,
    :data:`DEFAULT_NAMES`) followed by the user's ``(default_name, spec_dict, path)`` specs; names made unique
    with a numeric suffix."""
    unknown = [n for n in only if n not in BUILTIN_SPECS]
    if unknown:
        raise ValueError(f"unknown built-in spec(s) {unknown}; choose from {list(BUILTIN_NAMES)}")
    chosen = [n for n in BUILTIN_NAMES if n in (only or DEFAULT_NAMES) or n == BASELINE]
    out = [NamedSpec(n, copy.deepcopy(BUILTIN_SPECS[n]), "built-in") for n in chosen]
    taken = set(chosen)
    for default_name, spec, path in user:
        name = str(spec.get("name") or default_name)
        base, i = name, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        out.append(NamedSpec(name, {**spec, "name": name}, path))
    return out
