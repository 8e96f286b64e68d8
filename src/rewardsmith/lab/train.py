"""GRPO on the lab task under a rewardsmith spec, through TRL's ``GRPOTrainer``.

The reward is the spec itself, turned into TRL reward functions by
``rewardsmith.integrations.trl.reward_funcs``. Alongside it runs a zero-weight *probe* reward
(``lab_probe``) that scores nothing but logs, per step, the rollouts' accuracy and their share
of redundant steps, so the training curves show the same quantities for every spec whatever
the spec's own components are.

Every spec starts from a copy of the same base policy, with the same seed, prompts and budget
(:class:`RLConfig`).

Specs whose components read the policy's own signals (``pear``: entropies; ``implicit_prm``:
log-probs) train with :class:`~rewardsmith.integrations.trl_signals.PolicySignalsGRPOTrainer`, which
hands them the policy's values. ``signals: {model: policy}`` in a lab spec makes the policy being
trained the spec's signals model too (``sar`` scores the answer with and without the query with it,
as the paper does with its actor; ``pear`` counts the thinking tokens with its tokenizer).
``verifier: {name: reward_model, path: lab-rm:<kind>}`` uses a reward model the lab trains from the
base policy (:mod:`rewardsmith.lab.reward_models`), saved to disk and loaded by that verifier.

Per step the curve also records ``correct_neg_adv_share``: the share of correct rollouts (the
probe's verdict) whose advantage was negative — GRPO's advantage from the spec's reward, or for
DRPO the weight its loss puts on the rollout (:func:`drpo_correct_weights`) — and
``correct_rollouts``, how many there were (the share is 0 when there were none).
"""

from __future__ import annotations

import copy
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evaluate import TASK_VERIFIER, answer_is_correct
from .tasks import Problem, annotate

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from ..objectives.drpo import DRPOConfig

PROBE_NAME = "lab_probe"
POLICY_SIGNALS = "policy"  # signals.model of a lab spec: the policy being trained
_POLICY_SIGNALS_NEEDED = frozenset({"token_logprobs", "entropies"})


@dataclass(frozen=True)
class RLConfig:
    steps: int = 30
    prompts_per_step: int = 8
    num_generations: int = 8
    prompt_pool: int = 80  # distinct training problems, replayed in epochs
    learning_rate: float = 3e-5
    temperature: float = 1.0
    max_completion_length: int = 128
    beta: float = 0.0  # KL to the base policy; 0 skips the reference model
    epsilon: float = 0.2
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    bf16: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TaskProbe:
    """A zero-weight TRL reward function: returns each rollout's correctness (logged by TRL as
    ``rewards/lab_probe/mean``, i.e. the rollout accuracy) and logs ``lab/redundant_share``,
    ``lab/no_steps_share`` (bare guesses) and ``lab/excess_tokens`` (tokens beyond the
    necessary trace of each prompt, from the dataset's ``necessary_tokens`` column — unlike the
    raw length it does not swing with the step's mix of difficulties). With weight 0 it leaves
    the spec's reward untouched."""

    __name__ = PROBE_NAME

    def __init__(self) -> None:
        from ..verifiers.exact import ExactVerifier

        self._verifier = ExactVerifier(**{k: v for k, v in TASK_VERIFIER.items() if k != "name"})

    def __call__(
        self,
        prompts: list,
        completions: list,
        completion_ids: list,
        answer: list[str],
        necessary_tokens: list[int],
        task: list[str],
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        correct = [1.0 if answer_is_correct(self._verifier, t, a) else 0.0 for t, a in zip(texts, answer)]
        if log_metric is not None and texts:
            parts = [annotate(t, k) for t, k in zip(texts, task)]
            steps = sum(c.steps for c in parts)
            log_metric("lab/redundant_share", sum(c.redundant_steps for c in parts) / steps if steps else 0.0)
            log_metric("lab/no_steps_share", sum(c.steps == 0 for c in parts) / len(parts))
            log_metric(
                "lab/excess_tokens", sum(len(ids) - n for ids, n in zip(completion_ids, necessary_tokens)) / len(texts)
            )
        return correct


def rl_prompts(problems: Sequence[Problem], pool_size: int, steps: int, per_step: int, seed: int) -> list[Problem]:
    """The prompts of a run, in order: a pool of ``pool_size`` distinct problems (round-robin over
    difficulties), replayed in epochs, each epoch a fresh shuffle. With ``pool_size`` a multiple
    of ``per_step`` no problem appears twice in one step, and every problem recurs across
    epochs (per-prompt state such as HAPO's history needs that)."""
    rng = random.Random(seed)
    by_level: dict[int, list[Problem]] = {}
    for p in problems:
        by_level.setdefault(p.difficulty, []).append(p)
    levels = sorted(by_level)
    pool: list[Problem] = []
    seen: set[tuple[int, ...]] = set()
    for i in range(10 * pool_size):
        if len(pool) == pool_size:
            break
        p = rng.choice(by_level[levels[i % len(levels)]])
        if p.digits not in seen:
            seen.add(p.digits)
            pool.append(p)
    return replay_in_epochs(pool, steps * per_step, rng)


def replay_in_epochs(pool: Sequence[Problem], total: int, rng: random.Random) -> list[Problem]:
    """``total`` prompts from ``pool``, replayed in epochs, each a fresh shuffle by ``rng``."""
    if total > 0 and not pool:
        raise ValueError("need a non-empty prompt pool")
    order: list[Problem] = []
    while len(order) < total:
        epoch = list(pool)
        rng.shuffle(epoch)
        order.extend(epoch)
    return order[:total]


def rl_dataset(prompts: Sequence[Problem], tokenizer: PreTrainedTokenizerFast):
    """A TRL dataset in the given order (columns: prompt, answer, prompt_id, difficulty, task,
    necessary_tokens = tokens of the necessary trace with EOS, reference_responses = [the necessary
    trace], PAR's reference response, read by the ``reward_model`` verifier from ``meta``)."""
    from datasets import Dataset

    def necessary(p: Problem) -> int:
        return len(tokenizer(p.necessary_trace, add_special_tokens=False)["input_ids"]) + 1

    return Dataset.from_list(
        [
            {
                "prompt": p.prompt,
                "answer": p.answer,
                "prompt_id": p.prompt_id,
                "difficulty": p.difficulty,
                "task": p.task,
                "necessary_tokens": necessary(p),
                "reference_responses": [p.necessary_trace],
            }
            for p in prompts
        ]
    )


def lab_run_args(device: str, seed: int) -> dict[str, Any]:
    """The ``GRPOConfig`` settings every lab run fixes: a constant learning rate, the device, per-step
    logs, nothing saved or reported, seeded, and the prompts fed in the order the lab drew them."""
    return {
        "lr_scheduler_type": "constant",
        "use_cpu": device == "cpu",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": seed,
        "data_seed": seed,
        "dataloader_num_workers": 0,
        "shuffle_dataset": False,
    }


def split_objective(spec: dict[str, Any]) -> tuple[DRPOConfig | None, dict[str, Any]]:
    """A lab spec's training objective and its reward spec. ``objective: {name: drpo, lam, tau, delta, beta,
    kl_type, max_length}`` trains with DRPO (:class:`~rewardsmith.integrations.trl_drpo.DRPOTrainer`, correct
    = the task verifier's 0/1); without the key the lab trains with GRPO. Bad objectives are ``SpecError``."""
    from ..registry import SpecError

    reward = {k: v for k, v in spec.items() if k != "objective"}
    objective = spec.get("objective")
    if objective is None:
        return None, reward
    if not isinstance(objective, dict) or objective.get("name") != "drpo":
        raise SpecError(f"objective: only {{name: drpo, ...}} is available, got {objective!r}")
    from ..objectives.drpo import DRPOConfig

    options = {k: v for k, v in objective.items() if k != "name"}
    try:
        return DRPOConfig(**options), reward
    except (TypeError, ValueError) as e:
        raise SpecError(f"objective drpo: {e}") from None


# The spec advantage estimators TRL's GRPOTrainer can run, as its ``scale_rewards`` setting.
TRL_SCALE_REWARDS = {"grpo": "group", "batch_std": "batch", "dr_grpo": "none"}


def scale_rewards_for(spec: dict[str, Any], default: str) -> str:
    """TRL's ``scale_rewards`` for the spec's ``advantage`` (``default`` without one): grpo → group
    std, batch_std → group mean and batch std (the DLER-style batch normalization at sequence level;
    DLER whitens over the batch's tokens), dr_grpo → no std. Others are a ``SpecError``."""
    from ..registry import SpecError

    advantage = spec.get("advantage")
    if advantage is None:
        return default
    name = advantage.get("name") if isinstance(advantage, dict) else advantage
    if name not in TRL_SCALE_REWARDS:
        raise SpecError(f"advantage: the lab (TRL) runs {sorted(TRL_SCALE_REWARDS)}, got {advantage!r}")
    return TRL_SCALE_REWARDS[name]


def correct_negative_share(correct: Sequence[bool], coefficients: Sequence[float]) -> tuple[float, int]:
    """(share of correct rollouts whose coefficient — advantage, or DRPO weight — is negative, number of correct
    rollouts); the share is 0 when no rollout is correct."""
    picked = [float(a) for c, a in zip(correct, coefficients, strict=True) if c]
    return (sum(a < 0 for a in picked) / len(picked) if picked else 0.0), len(picked)


def drpo_correct_weights(lengths, groups, labels, config: DRPOConfig, max_length: float):
    """The weight DRPO's objective puts on each correct rollout's score s_i (Li et al. 2025, Eq. 9): w_i of the
    softmax over its group's correct set when the group also has a wrong rollout, else 0 (the group is
    dropped); NaN for rollouts that are not correct. Always ≥ 0: DRPO never pushes a correct rollout down."""
    import torch

    from ..objectives.drpo import CORRECT, WRONG, length_weights

    out = torch.full(lengths.shape, float("nan"), dtype=torch.float64)
    out[labels == CORRECT] = 0.0
    for g in torch.unique(groups):
        pos, neg = (groups == g) & (labels == CORRECT), (groups == g) & (labels == WRONG)
        if pos.any() and neg.any():
            out[pos] = length_weights(lengths[pos].double(), max_length, config.lam)
    return out


def _lab_trainer(drpo: bool, policy_signals: bool):
    """The trainer class: GRPO, DRPO and/or the policy-signals trainer, logging ``lab/correct_neg_adv_share``."""
    from trl import GRPOTrainer

    bases: list[type] = []
    if drpo:
        from ..integrations.trl_drpo import DRPOTrainer

        bases.append(DRPOTrainer)
    if policy_signals:
        from ..integrations.trl_signals import PolicySignalsGRPOTrainer

        bases.append(PolicySignalsGRPOTrainer)

    class LabTrainer(*(bases or [GRPOTrainer])):  # type: ignore[misc]
        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            self._lab_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            return self._lab_rewards

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            correct = (self._lab_rewards[:, self.reward_func_names.index(PROBE_NAME)] == 1).cpu()
            if "drpo_labels" in output:
                lengths = output["completion_mask"].sum(-1).cpu()
                coef = drpo_correct_weights(
                    lengths, output["drpo_groups"].cpu(), output["drpo_labels"].cpu(), self.drpo, self.drpo.max_length
                )
            else:
                coef = output["advantages"].cpu()
            share, n = correct_negative_share(correct.tolist(), coef.tolist())
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["lab/correct_neg_adv_share"].append(share)
            self._metrics[mode]["lab/correct_rollouts"].append(float(n))
            return output

    return LabTrainer


def _spec_reward_funcs(
    spec: dict[str, Any],
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    group: int,
    batch: int,
    device: str,
) -> tuple[list[Callable], bool, Any]:
    """The spec's TRL reward functions, whether they need the policy's per-token signals, and their pipeline. With
    ``signals.model: policy`` the policy (as it trains) is put in the pipeline as that signals model."""
    from ..integrations.trl import reward_funcs
    from ..pipeline import load_spec

    pipeline = load_spec(spec)
    signals = spec.get("signals") or {}
    if signals.get("model") == POLICY_SIGNALS:
        from ..lm_signals import CausalLMScorer

        pipeline.scorers[POLICY_SIGNALS] = CausalLMScorer(policy, tokenizer, device, batch_size=batch)
        policy.train()  # the scorer put it in eval mode; the trainer trains it (the scorer leaves the mode alone)
    funcs = reward_funcs(pipeline, eos_token_id=tokenizer.eos_token_id, num_generations=group)
    return list(funcs), bool(pipeline.needs_signals & _POLICY_SIGNALS_NEEDED), pipeline


def _trainer_callbacks(curve: list[dict[str, float]], on_step: Callable[[], None] | None):
    from transformers import TrainerCallback

    keys = {
        "reward": "reward",
        "completions/mean_length": "mean_tokens",
        f"rewards/{PROBE_NAME}/mean": "accuracy",
        "lab/redundant_share": "redundant_share",
        "lab/no_steps_share": "no_steps_share",
        "lab/excess_tokens": "excess_tokens",
        "completions/clipped_ratio": "truncated_share",
        "entropy": "entropy",
        "lab/correct_neg_adv_share": "correct_neg_adv_share",
        "lab/correct_rollouts": "correct_rollouts",
    }

    class CurveCallback(TrainerCallback):
        def __init__(self) -> None:
            self._t0 = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                row = {"step": int(state.global_step), "seconds": time.perf_counter() - self._t0}
                row.update(
                    {short: float(logs[k]) for k, short in keys.items() if k in logs and math.isfinite(float(logs[k]))}
                )
                curve.append(row)

        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step()

    return [CurveCallback()]


def train_spec(
    base_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    spec: dict[str, Any],
    problems: Sequence[Problem],
    config: RLConfig,
    seed: int,
    device: str = "cpu",
    on_step: Callable[[], None] | None = None,
    reward_funcs_factory: Callable[[dict[str, Any]], list[Callable]] | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[PreTrainedModel, list[dict[str, float]]]:
    """GRPO (or DRPO, see :func:`split_objective`) from a copy of ``base_model`` under ``spec``; returns
    (policy, per-step curve). Lab RMs the spec names are trained from ``base_model`` (or loaded from
    ``cache_dir``, default the lab cache) first.

    The curve has per step, over the sampled rollouts: reward, mean_tokens, excess_tokens,
    accuracy, redundant_share, no_steps_share, truncated_share, entropy, correct_neg_adv_share,
    correct_rollouts, and seconds."""
    from transformers import PrinterCallback, set_seed
    from trl import GRPOConfig

    from .reward_models import RMConfig, load_or_train_rm, resolve_lab_models

    rm_config = RMConfig(max_new_tokens=config.max_completion_length)
    spec = resolve_lab_models(
        spec,
        lambda kind: load_or_train_rm(kind, base_model, tokenizer, problems, seed, rm_config, cache_dir, log),
    )
    drpo, spec = split_objective(spec)
    set_seed(seed)
    model = copy.deepcopy(base_model).to(device)
    model.train()
    batch = config.prompts_per_step * config.num_generations
    if reward_funcs_factory:
        funcs, policy_signals, pipeline = reward_funcs_factory(spec), False, None
    else:
        funcs, policy_signals, pipeline = _spec_reward_funcs(
            spec, model, tokenizer, config.num_generations, batch, device
        )
    curve: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="rewardsmith-lab-") as tmp:
        args = GRPOConfig(
            output_dir=tmp,
            max_steps=config.steps,
            per_device_train_batch_size=batch,
            num_generations=config.num_generations,
            learning_rate=config.learning_rate,
            temperature=config.temperature,
            max_completion_length=config.max_completion_length,
            beta=config.beta,
            epsilon=config.epsilon,
            loss_type=config.loss_type,
            scale_rewards=scale_rewards_for(spec, config.scale_rewards),
            reward_weights=[1.0] * len(funcs) + [0.0],
            gradient_checkpointing=False,
            bf16=config.bf16,
            **lab_run_args(device, seed),  # rl_prompts already shuffled each epoch without in-step repeats
        )
        objective = {} if drpo is None else {"drpo": drpo, "correctness_func": PROBE_NAME}
        trainer = _lab_trainer(drpo is not None, policy_signals)(
            **objective,
            model=model,
            reward_funcs=[*funcs, TaskProbe()],
            args=args,
            train_dataset=rl_dataset(
                rl_prompts(problems, config.prompt_pool, config.steps, config.prompts_per_step, seed), tokenizer
            ),
            processing_class=tokenizer,
            callbacks=_trainer_callbacks(curve, on_step),
        )
        trainer.remove_callback(PrinterCallback)  # progress is shown by the caller
        try:
            trainer.train()
        finally:
            if pipeline is not None:
                pipeline.close()
    model.eval()
    return model, curve
