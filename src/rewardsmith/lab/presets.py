"""Lab presets: how big the policy is, how long SFT and RL run, and how much is evaluated.

- ``tiny``: a smoke run (about 30 s on 2 CPU cores); checks that the pipeline runs. Its policy does not
  learn the task (greedy accuracy 0), so its numbers say nothing about the specs.
- ``quick``: the whole comparison in about 5 minutes on 2 CPU cores, 3 with the base policy cached (``make demo``).
- ``full``: a larger policy and longer RL for a stronger result; meant for ``--device cuda``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelConfig
from .sft import SFTConfig
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
    specs: tuple[str, ...] = ()  # the built-in specs it runs (the baseline always); () = all of them


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
    ),
    "quick": Preset(
        name="quick",
        sft=SFTConfig(steps=800),
        rl=RLConfig(steps=30, prompts_per_step=8, num_generations=8, learning_rate=3e-5),
        n_test=300,
        max_new_tokens=128,
    ),
    "full": Preset(
        name="full",
        sft=SFTConfig(
            model=ModelConfig(hidden_size=256, num_layers=4, num_heads=8, intermediate_size=768),
            n_train=50000,
            steps=3000,
            batch_size=128,
            lr=2e-3,
            warmup_steps=100,
        ),
        rl=RLConfig(steps=150, prompts_per_step=16, num_generations=8, prompt_pool=480, learning_rate=5e-5),
        n_test=1200,
        max_new_tokens=128,
        device="cuda",
    ),
}
