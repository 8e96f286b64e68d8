"""Lab presets: how big the policy is, how long SFT and RL run, and how much is evaluated.

- ``tiny``: a smoke test (``smoke=True``): checks that the pipeline runs; its report names no best spec.
  Its policy does not learn the task (greedy accuracy 0), so its numbers say nothing about the specs.
- ``quick`` (``make demo``): the rounding task's comparison on one seed (every slip checked and verbosity spread 1
  in the SFT traces, :data:`SELECTIVE_STYLE`; 1,600 SFT steps, GRPO at lr 5e-5), with the uniform and
  difficulty-aware length specs. Those two settings are the condition where, over five seeds, the uniform rewards
  lost the hardest bucket beyond the noise and the difficulty-aware ones did not (docs/lab.md, "Conditions on the
  rounding task"); at 1,200 steps and lr 1e-4 every reward lost 5–12 points on seed 0.
- ``study``: every comparison spec on three seeds of ``quick``'s base policies, for intervals.
- ``full``: a larger policy and longer RL, every spec, for one large GPU (``bash bench/lab_full_gpu.sh``).

Sizing on 2 CPU cores. Per-step times: SFT (fp32 AdamW, 64 traces, the 0.6M-parameter policy) 0.32 s on idle
cores (the prototype's figure; bf16 autocast 0.65 s). Measured here under other jobs' load (load average 2–12):
fp32 0.89 s vs bf16 1.59 s per step on 1 thread, 1.63 vs 5.58 s on 2 threads — fp32 is the default, and
under load 1 thread beats 2. A GRPO step of 8 prompts × 8 rollouts (≤ 128 tokens) took 0.6–1.7 s on a
lightly loaded machine (the chain task's quick runs) and 10.4 s at load 12; evaluating 600 held-out
problems greedily 18–41 s at load 12. Estimates for idle cores (t_sft = 0.32 s, t_rl ≈ 1.2 s, evaluation
≈ 20 s per policy, greedy and one sample each):

- ``quick`` = 1600·t_sft + 7 evaluations + 6 specs × 30·t_rl ≈ 512 + 140 + 216 ≈ 870 s by these estimates, whose
  t_sft is the prototype's; measured (:data:`rewardsmith.lab.cli.PRESET_TIMES`) 453 s for ``make demo``, SFT 280 s
  at 0.18 s/step and GRPO 20–24 s per spec on idle cores (at 1,200 steps it took 400 s).
- ``study`` = 3 seeds × (1600·t_sft + evaluation) + 3 × 15 specs × (30·t_rl + evaluation)
  ≈ 3 × 532 + 42 × 56 ≈ 1596 + 2352 ≈ 66 min (≈ 3 × 300 + 42 × 27 ≈ 34 min with quick's measured times), plus the
  PEAR/SAR signal passes and the two reward models' training (lab-trained RMs); with the seeds as parallel processes
  the measured time is in docs/lab.md. (With 600 SFT steps on the carry task it took 25 min.)
- ``full`` (one large GPU, not run here): a 3.4M-parameter policy, 2,000 SFT steps of 128 traces and 60 GRPO
  steps of 16 × 8 rollouts per spec, the study's 15 specs; sized to fit 10 minutes assuming ~30 ms per SFT step
  and ~0.5 s per GRPO step on the GPU (generation-latency bound at this size).

Measured wall times are in :data:`rewardsmith.lab.cli.PRESET_TIMES` (``--help``; docs/lab.md states the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelConfig
from .sft import SFTConfig
from .tasks import RISKY_CHECKS, CarryStyle
from .train import RLConfig


@dataclass(frozen=True)
class Preset:
    name: str
    sft: SFTConfig
    rl: RLConfig
    n_test: int  # held-out problems, spread evenly over difficulties
    max_new_tokens: int  # evaluation budget
    sample_temperature: float = 1.0  # also evaluate one sampled completion per problem (0: greedy only)
    device: str = "cpu"
    seeds: tuple[int, ...] = (0,)  # one base policy and comparison per seed; ≥ 2 give intervals over seeds
    smoke: bool = False  # a smoke test: its report names no best spec, front or recommendation
    specs: tuple[str, ...] = ()  # the built-in specs it runs (the baseline always); () = all of them


# The quick comparison: the baseline, three uniform length rewards (kimi: no budget; l1_max and truncation at 64) and
# two difficulty-aware ones (laser_d, hapo).
QUICK_SPECS = ("correctness", "kimi", "l1_max", "truncation", "laser_d", "hapo")
# The study's comparison: uniform (kimi, l1_max, truncation), difficulty-aware (laser_d, hapo, grpo_lambda, dler),
# label-free (format_length), and the signal- and model-based specs where they are built in (others are skipped).
STUDY_SPECS = (
    "correctness",
    "kimi",
    "l1_max",
    "truncation",
    "laser_d",
    "hapo",
    "grpo_lambda",
    "dler",
    "format_length",
    "drpo",
    "pear",
    "sar",
    "rm_concise",
    "rm_biased_raw",
    "rm_biased_par",
)

# The SFT traces of quick, study and full (docs/lab.md, "The rounding task"): every slip checked, so the policy can
# learn to check exactly the steps that slip, and verbosity v ~ U(0, 2) per trace, so concise traces are common
# enough for the policy to compute in them (at U(0.5, 1.5) it could not: a length reward then cut its competence).
SELECTIVE_STYLE = CarryStyle(**RISKY_CHECKS["always"], verbosity_spread=1.0)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        sft=SFTConfig(
            model=ModelConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=192),
            n_train=2000,
            steps=80,
            batch_size=32,
            lr=3e-3,
            warmup_steps=10,
        ),
        rl=RLConfig(steps=2, prompts_per_step=4, num_generations=4, prompt_pool=8, max_completion_length=64),
        n_test=48,
        max_new_tokens=64,
        smoke=True,
    ),
    "quick": Preset(
        name="quick",
        sft=SFTConfig(steps=1600, task="rounding", style=SELECTIVE_STYLE),
        rl=RLConfig(steps=30, prompts_per_step=8, num_generations=8, learning_rate=5e-5, bf16=False),
        n_test=600,  # 100 per difficulty: the noise floor on the hardest bucket is 3/100
        max_new_tokens=128,
        specs=QUICK_SPECS,
    ),
    "study": Preset(
        name="study",
        sft=SFTConfig(steps=1600, task="rounding", style=SELECTIVE_STYLE),  # quick's base policies, 3 seeds
        rl=RLConfig(steps=30, prompts_per_step=8, num_generations=8, learning_rate=5e-5, bf16=False),
        n_test=600,
        max_new_tokens=128,
        specs=STUDY_SPECS,
        seeds=(0, 1, 2),
    ),
    "full": Preset(
        name="full",
        sft=SFTConfig(
            model=ModelConfig(hidden_size=256, num_layers=4, num_heads=8, intermediate_size=768),
            n_train=50000,
            steps=2000,
            batch_size=128,
            lr=2e-3,
            warmup_steps=100,
            bf16=True,
            task="rounding",
            style=SELECTIVE_STYLE,
        ),
        rl=RLConfig(steps=60, prompts_per_step=16, num_generations=8, prompt_pool=480, learning_rate=1e-4),
        n_test=1200,
        max_new_tokens=128,
        device="cuda",
        specs=STUDY_SPECS,
    ),
}
