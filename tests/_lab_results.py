"""Synthetic per-seed lab results (the layout of ``rewardsmith.lab.run.run_seed``) for report and study tests.

Each completion's correctness is drawn from a fixed accuracy per (spec, difficulty) and its length
from the spec's token scale, so the numbers are known without training anything."""

import random

from rewardsmith.lab.evaluate import compare_to_baseline, pareto_front
from rewardsmith.lab.specs import BUILTIN_SPECS

LEVELS = ("2", "4", "8")
# spec: (accuracy per level, tokens per level)
PROFILES = {
    "correctness": ((0.95, 0.85, 0.70), (20, 40, 80)),
    "kimi": ((0.95, 0.70, 0.20), (12, 22, 40)),
    "laser_d": ((0.95, 0.84, 0.69), (14, 34, 76)),
    "format_length": ((0.90, 0.60, 0.30), (14, 30, 60)),
}


def evaluation(acc_tok, rng, per_level=40):
    accs, toks = acc_tok
    cols = {"difficulty": [], "tokens": [], "correct": []}
    by = {}
    for k, a, t in zip(LEVELS, accs, toks):
        correct = [int(rng.random() < a) for _ in range(per_level)]
        tokens = [max(1, round(rng.gauss(t, t / 5))) for _ in range(per_level)]
        cols["difficulty"] += [k] * per_level
        cols["tokens"] += tokens
        cols["correct"] += correct
        by[k] = {
            "n": per_level,
            "accuracy": sum(correct) / per_level,
            "mean_tokens": sum(tokens) / per_level,
            "redundant_share": 0.2,
            "no_steps_share": 0.0,
            "truncated_share": 0.0,
        }
    n = len(cols["correct"])
    return {
        "n": n,
        "accuracy": sum(cols["correct"]) / n,
        "mean_tokens": sum(cols["tokens"]) / n,
        "redundant_share": 0.2,
        "no_steps_share": 0.0,
        "truncated_share": 0.0,
        "by_difficulty": by,
        "completions": cols,
    }


def seed_run(seed, profiles=PROFILES, steps=6, neg_adv=None, fail=()):
    rng = random.Random(seed)
    specs = {}
    for name, prof in profiles.items():
        if name in fail:
            continue
        r = evaluation(prof, rng)
        r["sampled"] = {"temperature": 1.0, **evaluation(prof, rng)}
        r["curve"] = [
            {
                "step": i + 1,
                "reward": 0.5,
                "accuracy": min(1.0, prof[0][1] + 0.01 * i + 0.02 * rng.random()),
                "mean_tokens": prof[1][1] - i + rng.random(),
                **(
                    {"correct_neg_adv_share": neg_adv[name] + 0.01 * rng.random()}
                    if neg_adv and name in neg_adv
                    else {}
                ),
            }
            for i in range(steps)
        ]
        r.update(train_seconds=1.0, spec=BUILTIN_SPECS.get(name, {"name": name}), source="built-in")
        r["samples"] = [{"prompt": "1+2=", "completion": "####3"}]
        specs[name] = r
    if "correctness" in specs:
        for r in specs.values():
            r.update(compare_to_baseline(r, specs["correctness"]))
            r["sampled"].update(compare_to_baseline(r["sampled"], specs["correctness"]["sampled"]))
    base = evaluation(((0.9, 0.8, 0.6), (30, 60, 120)), rng)
    base["sampled"] = {"temperature": 1.0, **evaluation(((0.9, 0.8, 0.6), (30, 60, 120)), rng)}
    return {
        "seed": seed,
        "seconds": 3.0,
        "baseline": "correctness",
        "pareto_front": pareto_front({n: (r["accuracy"], r["mean_tokens"]) for n, r in specs.items()}),
        "necessary_tokens": {"mean_tokens": 30.0, "by_difficulty": {"2": 11.0, "4": 23.0, "8": 47.0}},
        "base_policy": {**base, "sft_seconds": 1.0, "sft_cached": False, "cache_key": "k", "sft_final_loss": 0.1},
        "config": {"sft": {}, "rl": {}, "n_test": 120, "max_new_tokens": 128, "sample_temperature": 1.0},
        "specs": specs,
        "failures": [{"spec": n, "stage": "rl", "error": "RuntimeError: boom", "traceback": ""} for n in fail],
    }


def combine_runs(runs, names, smoke=False, preset="study"):
    """``rewardsmith.lab.study.combine`` with fixed metadata."""
    from rewardsmith.lab.study import combine

    meta = {"smoke": smoke, "seconds": 9.0, "device": "cpu", "threads": 2, "cpu_count": 2}
    config = next(r["config"] for r in runs.values() if "config" in r)
    return combine(runs, preset=preset, baseline="correctness", spec_names=list(names), config=config, meta=meta)


def combined(seeds=(0, 1, 2), smoke=False, preset="study", **kw):
    runs = {str(s): seed_run(s, **kw) for s in seeds}
    return combine_runs(runs, kw.get("profiles", PROFILES), smoke, preset)
