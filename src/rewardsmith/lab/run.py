"""The whole comparison: one base policy, GRPO under each spec, held-out evaluation, report.

Every spec gets a copy of the same cached base policy, the same seed, the same training
prompts and the same RL budget. The correctness-only spec is always run: it is the baseline
the others are compared with.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .evaluate import compare_to_baseline, evaluate_policy, necessary_tokens, pareto_front
from .presets import Preset
from .specs import BASELINE, NamedSpec
from .tasks import train_test_split


def validate_specs(specs: Sequence[NamedSpec]) -> None:
    """Load every spec once (unknown names and bad options fail here, before any training)."""
    from ..pipeline import load_spec
    from .train import split_objective

    for s in specs:
        load_spec(split_objective(s.spec)[1]).close()


def _bar(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)


def run_lab(
    preset: Preset,
    specs: Sequence[NamedSpec],
    device: str,
    seed: int,
    threads: int | None = 2,
    cache_dir: Path | None = None,
    reward_funcs_factory: Callable[[dict[str, Any]], list[Callable]] | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict[str, Any]:
    """Run the comparison and return the results dict (see :mod:`rewardsmith.lab.report`)."""
    import torch

    from .sft import load_or_train
    from .train import train_spec

    t0 = time.perf_counter()
    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    names = [s.name for s in specs]
    if BASELINE not in names:
        raise ValueError(f"the comparison needs the '{BASELINE}' spec as its baseline")
    validate_specs(specs)
    sft = preset.sft
    train, test = train_test_split(sft.n_train, preset.n_test, seed, sft.min_terms, sft.max_terms, sft.task)

    bar = _bar(preset.sft.steps, "SFT base policy", "step")
    model, tokenizer, sft_info = load_or_train(
        preset.sft,
        train,
        seed,
        device=device,
        cache_dir=cache_dir,
        progress=lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
    )
    bar.close()
    log(
        f"base policy: {'loaded from' if sft_info['cached'] else 'trained and cached in'} {sft_info['path']} ({sft_info['seconds']:.0f} s of SFT)"
    )

    base_eval = evaluate_policy(
        model, tokenizer, test, preset.max_new_tokens, sample_temperature=preset.sample_temperature, seed=seed
    )
    log(
        f"base policy: accuracy {base_eval['accuracy']:.3f}, {base_eval['mean_tokens']:.1f} tokens, redundant share {base_eval['redundant_share']:.2f}"
    )

    results: dict[str, dict[str, Any]] = {}
    bar = _bar(preset.rl.steps * len(specs), "GRPO", "step")
    for s in specs:
        bar.set_description(f"GRPO {s.name}")
        t_spec = time.perf_counter()
        policy, curve = train_spec(
            model,
            tokenizer,
            s.spec,
            train,
            preset.rl,
            seed,
            device=device,
            on_step=lambda: bar.update(1),
            reward_funcs_factory=reward_funcs_factory,
        )
        train_seconds = time.perf_counter() - t_spec
        result = evaluate_policy(
            policy, tokenizer, test, preset.max_new_tokens, sample_temperature=preset.sample_temperature, seed=seed
        )
        results[s.name] = {**result, "curve": curve, "train_seconds": train_seconds, "spec": s.spec, "source": s.source}
        bar.write(
            f"  {s.name}: accuracy {result['accuracy']:.3f}, {result['mean_tokens']:.1f} tokens ({train_seconds:.0f} s)",
            file=sys.stderr,
        )
        del policy
    bar.close()

    base = results[BASELINE]
    for r in results.values():
        r.update(compare_to_baseline(r, base))
        if "sampled" in r:
            r["sampled"].update(compare_to_baseline(r["sampled"], base["sampled"]))
    front = pareto_front({n: (r["accuracy"], r["mean_tokens"]) for n, r in results.items()})
    return {
        "preset": preset.name,
        "seconds": time.perf_counter() - t0,
        "baseline": BASELINE,
        "device": device,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "pareto_front": front,
        "necessary_tokens": necessary_tokens(test, tokenizer),
        "base_policy": {
            **base_eval,
            "sft_seconds": sft_info["seconds"],
            "sft_cached": sft_info["cached"],
            "cache_key": sft_info["key"],
            "sft_final_loss": sft_info["losses"][-1] if sft_info["losses"] else None,
        },
        "config": {
            "sft": preset.sft.to_dict(),
            "rl": preset.rl.to_dict(),
            "n_test": preset.n_test,
            "max_new_tokens": preset.max_new_tokens,
            "sample_temperature": preset.sample_temperature,
        },
        "specs": results,
    }
