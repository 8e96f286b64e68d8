"""The whole comparison, for one or several seeds: per seed a base policy, GRPO under each spec,
held-out evaluation; then the aggregate over seeds (:mod:`rewardsmith.lab.study`).

Within a seed every spec gets a copy of the same cached base policy, the same seed, the same
training prompts and the same RL budget; each seed has its own base policy (SFT cached per seed),
training prompts and held-out problems. The correctness-only spec is always run: it is the
baseline the others are compared with.

Every finished (seed, spec) pair is written atomically to ``<out>/seeds/<seed>/<spec>.json`` (the
base policy's evaluation to ``base.json``); a rerun with the same ``--out``, preset and spec skips
the pairs already done. A spec that fails on a seed is recorded in ``failures`` (and retried by a
rerun); the other pairs go on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .evaluate import compare_to_baseline, evaluate_policy, necessary_tokens, necessary_trace_errors, pareto_front
from .presets import Preset
from .specs import BASELINE, NamedSpec
from .study import combine, difficulty_order
from .tasks import train_test_split


def validate_specs(specs: Sequence[NamedSpec]) -> None:
    """Load every spec once (unknown names and bad options fail here, before any training)."""
    from ..pipeline import load_spec
    from .reward_models import lab_rm_kinds
    from .train import split_objective

    for s in specs:
        lab_rm_kinds(s.spec)
        load_spec(split_objective(s.spec)[1]).close()


def _bar(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)


def preset_config(preset: Preset) -> dict[str, Any]:
    return {
        "sft": preset.sft.to_dict(),
        "rl": preset.rl.to_dict(),
        "n_test": preset.n_test,
        "max_new_tokens": preset.max_new_tokens,
        "sample_temperature": preset.sample_temperature,
    }


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False))
    os.replace(tmp, path)


def _load_done(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The stored result at ``path`` if it finished under the same fingerprint, else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("fingerprint") == fingerprint and "error" not in data else None


def _selectivity(evaluation: dict[str, Any]) -> str:
    rates = [evaluation.get("slip_check_rate"), evaluation.get("right_check_rate")]
    if None in rates:
        return ""
    return f"; sampled, it checks {rates[0]:.2f} of its slipped steps and re-checks {rates[1]:.2f} of its right ones"


def _competence(errors: dict[str, Any] | None) -> str:
    if not errors or not errors["by_difficulty"]:
        return ""
    hardest = difficulty_order(list(errors["by_difficulty"]))[-1]  # as the study picks its hardest bucket
    share = errors["by_difficulty"][hardest]["share"]
    return f"; given the necessary trace, it would write a wrong digit in {share:.0%} of the k={hardest} problems"


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()


def run_seed(
    preset: Preset,
    specs: Sequence[NamedSpec],
    device: str,
    seed: int,
    seed_dir: Path,
    label: str = "",
    cache_dir: Path | None = None,
    reward_funcs_factory: Callable[[dict[str, Any]], list[Callable]] | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict[str, Any]:
    """One seed's comparison; returns its results (the single-run layout of :mod:`rewardsmith.lab.report`,
    with ``failures``). Finished pairs found in ``seed_dir`` are loaded instead of rerun."""
    from .sft import load_or_train
    from .train import train_spec

    t0 = time.perf_counter()
    config = preset_config(preset)
    base_fp = _fingerprint(config, seed)
    base_file = seed_dir / "base.json"
    todo = [s for s in specs if _load_done(seed_dir / f"{s.name}.json", _fingerprint(config, seed, s.spec)) is None]
    base = _load_done(base_file, base_fp)
    failures: list[dict[str, Any]] = []
    model = tokenizer = None
    sft = preset.sft
    train, test = train_test_split(sft.n_train, preset.n_test, seed, sft.min_terms, sft.max_terms, sft.task)
    if todo or base is None:
        try:
            bar = _bar(preset.sft.steps, f"{label}SFT base policy", "step")
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
                f"{label}base policy: {'loaded from' if sft_info['cached'] else 'trained and cached in'} "
                f"{sft_info['path']} ({sft_info['seconds']:.0f} s of SFT)"
            )
            if base is None:
                ev = evaluate_policy(
                    model,
                    tokenizer,
                    test,
                    preset.max_new_tokens,
                    sample_temperature=preset.sample_temperature,
                    seed=seed,
                )
                base = {
                    "fingerprint": base_fp,
                    "base_policy": {
                        **ev,
                        "sft_seconds": sft_info["seconds"],
                        "sft_cached": sft_info["cached"],
                        "cache_key": sft_info["key"],
                        "sft_final_loss": sft_info["losses"][-1] if sft_info["losses"] else None,
                        "necessary_trace_errors": necessary_trace_errors(model, tokenizer, test),
                    },
                    "necessary_tokens": necessary_tokens(test, tokenizer),
                }
                write_json_atomic(base_file, base)
            bp = base["base_policy"]
            log(
                f"{label}base policy: accuracy {bp['accuracy']:.3f}, {bp['mean_tokens']:.1f} tokens, "
                f"redundant share {bp['redundant_share']:.2f}"
                + _selectivity(bp.get("sampled") or {})
                + _competence(bp.get("necessary_trace_errors"))
            )
        except Exception as e:  # noqa: BLE001 — one seed's failure is recorded, the study goes on
            log(f"{label}base policy failed: {_error(e)}")
            err = {"stage": "sft", "error": _error(e), "traceback": traceback.format_exc(limit=5)}
            return {
                "seed": seed,
                "seconds": time.perf_counter() - t0,
                "specs": {},
                "failures": [{**err, "spec": s.name} for s in specs],
            }

    results: dict[str, dict[str, Any]] = {}
    loaded: list[str] = []  # pairs finished by an earlier run into the same directory
    bar = _bar(preset.rl.steps * len(todo), f"{label}GRPO", "step")
    for s in specs:
        path = seed_dir / f"{s.name}.json"
        fp = _fingerprint(config, seed, s.spec)
        done = _load_done(path, fp)
        if done is not None:
            results[s.name] = done["result"]
            loaded.append(s.name)
            log(f"{label}{s.name}: already done ({path})")
            continue
        bar.set_description(f"{label}GRPO {s.name}")
        t_spec = time.perf_counter()
        try:
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
                cache_dir=cache_dir,
                log=lambda m: bar.write(m, file=sys.stderr),
            )
            train_seconds = time.perf_counter() - t_spec
            result = evaluate_policy(
                policy, tokenizer, test, preset.max_new_tokens, sample_temperature=preset.sample_temperature, seed=seed
            )
            del policy
        except Exception as e:  # noqa: BLE001 — recorded; the other specs and seeds go on
            failure = {"spec": s.name, "stage": "rl", "error": _error(e), "traceback": traceback.format_exc(limit=5)}
            failures.append(failure)
            write_json_atomic(path, {"fingerprint": fp, **failure})
            bar.write(f"  {label}{s.name}: FAILED ({failure['error']})", file=sys.stderr)
            continue
        results[s.name] = {**result, "curve": curve, "train_seconds": train_seconds, "spec": s.spec, "source": s.source}
        write_json_atomic(path, {"fingerprint": fp, "result": results[s.name]})
        bar.write(
            f"  {label}{s.name}: accuracy {result['accuracy']:.3f}, {result['mean_tokens']:.1f} tokens "
            f"({train_seconds:.0f} s)",
            file=sys.stderr,
        )
    bar.close()

    if BASELINE in results:
        ref = results[BASELINE]
        for r in results.values():
            r.update(compare_to_baseline(r, ref))
            if "sampled" in r and "sampled" in ref:
                r["sampled"].update(compare_to_baseline(r["sampled"], ref["sampled"]))
    return {
        "seed": seed,
        "seconds": time.perf_counter() - t0,
        "baseline": BASELINE,
        "pareto_front": pareto_front({n: (r["accuracy"], r["mean_tokens"]) for n, r in results.items()}),
        "necessary_tokens": base["necessary_tokens"],
        "base_policy": base["base_policy"],
        "config": config,
        "specs": results,
        "failures": failures,
        "loaded": loaded,
    }


def run_lab(
    preset: Preset,
    specs: Sequence[NamedSpec],
    device: str,
    seeds: Sequence[int],
    out_dir: Path,
    threads: int | None = 2,
    cache_dir: Path | None = None,
    reward_funcs_factory: Callable[[dict[str, Any]], list[Callable]] | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> dict[str, Any]:
    """Run the comparison on every seed (progress ``seed i/n``) and return the results dict: per seed
    under ``runs`` and aggregated over seeds under ``specs`` (see :mod:`rewardsmith.lab.study`)."""
    import torch

    t0 = time.perf_counter()
    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    if BASELINE not in [s.name for s in specs]:
        raise ValueError(f"the comparison needs the '{BASELINE}' spec as its baseline")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"need one or more distinct seeds, got {list(seeds)}")
    validate_specs(specs)
    runs: dict[str, dict[str, Any]] = {}
    for i, seed in enumerate(seeds, 1):
        label = f"seed {i}/{len(seeds)} (seed {seed}): " if len(seeds) > 1 else ""
        log(f"{label or f'seed {seed}: '}starting")
        runs[str(seed)] = run_seed(
            preset,
            specs,
            device,
            seed,
            out_dir / "seeds" / str(seed),
            label=label,
            cache_dir=cache_dir,
            reward_funcs_factory=reward_funcs_factory,
            log=log,
        )
    return combine(
        runs,
        preset=preset.name,
        baseline=BASELINE,
        spec_names=[s.name for s in specs],
        config=preset_config(preset),
        meta={
            "smoke": preset.smoke,
            "seconds": time.perf_counter() - t0,
            "device": device,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
        },
    )
