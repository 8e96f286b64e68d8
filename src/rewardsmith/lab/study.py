"""The lab's results over seeds: the aggregate and the analyses the study report answers.

:func:`combine` turns the per-seed results of :func:`rewardsmith.lab.run.run_seed` into
``results.json``::

    {"preset", "seconds", "baseline", "device", "threads", "cpu_count", "config",
     "seeds": [int], "hardest": "<difficulty key>",
     "runs": {"<seed>": <one seed's results: base_policy, necessary_tokens, specs, failures, ...>},
     "failures": [{"seed", "spec", "stage", "error", "traceback"}],
     "specs": {name: <aggregate>}, "base_policy": <aggregate>, "necessary_tokens": {...},
     "study": {"families", "length_accuracy", "format_length", "drpo", "recommended"}}

An aggregate has the single-run keys (``accuracy`` = mean over seeds, ``mean_tokens``,
``by_difficulty`` with accuracy pooled over seeds, ``token_reduction``, ``aes``, ...) plus
``n_seeds``, ``intervals`` (t over seeds; Wilson per difficulty, pooled) and ``vs_baseline``:
paired differences against the correctness-only run for ``accuracy``, ``hardest_accuracy``,
``mean_tokens`` and ``token_change`` (relative). With several seeds these pair by seed
(t-interval of the per-seed differences); with one seed they pair by held-out problem within it
(so they cover the evaluation's noise, not the seed's) and say so in their ``note``.

A claim holds only when its interval excludes 0 (:meth:`~rewardsmith.lab.intervals.Estimate.sign`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .intervals import Estimate, mean_interval, newcombe_difference, paired_difference, wilson

CHECK_RATES = ("slip_check_rate", "right_check_rate")  # check selectivity (lab.evaluate.score_generations)
SHARE_DIFFERENCE = (-1.0, 1.0)  # the range of a difference of two accuracies
KEEP_MARGIN = 0.05  # "accuracy kept": the 95% interval of the paired change lies above −5 points
WITHIN_SEED = "one seed: paired over held-out problems (evaluation noise only, not seed-to-seed variation)"
MIN_BIN = 20  # completions per length bin
MAX_BINS = 6

# Which length penalties scale with difficulty (registry shaper names; a spec named dler* is
# DLER-style difficulty-aware truncation). Others count as neither.
UNIFORM_SHAPERS = frozenset({"kimi", "l1_max", "l1_exact", "truncation", "laser"})
DIFFICULTY_AWARE_SHAPERS = frozenset({"laser_d", "laser_de", "hapo", "grpo_lambda"})
NEG_ADV_KEY = "correct_neg_adv_share"  # per-step curve metric (DRPO vs GRPO section)


def difficulty_order(keys: Sequence[str]) -> list[str]:
    """Difficulty keys easiest first: numerically when they are numbers, else as given."""
    try:
        return sorted(keys, key=float)
    except ValueError:
        return list(keys)


def _ok_runs(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {s: r for s, r in runs.items() if "base_policy" in r}


def _mean_est(values: Sequence[float]) -> dict[str, Any]:
    return mean_interval(values).to_dict()


def _pooled(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"share", "n"}`` cells pooled into one, its share with a 95% Wilson interval on the pooled counts."""
    n = sum(c["n"] for c in parts)
    hits = sum(round((c["share"] or 0.0) * c["n"]) for c in parts)
    return {"share": hits / n if n else None, "n": n, "interval": wilson(hits, n).to_dict()}


def pool_by_level(maps: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """``{level: {"share", "n"}}`` maps of several seeds pooled level by level (see :func:`_pooled`)."""
    return {k: _pooled([m[k] for m in maps if k in m]) for k in difficulty_order(list({k for m in maps for k in m}))}


def pool_shares(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"share", "n", "by_difficulty"}`` results of several seeds pooled into one, each share with a
    95% Wilson interval on the pooled counts (``interval``)."""
    return {**_pooled(cells), "by_difficulty": pool_by_level([c["by_difficulty"] for c in cells])}


def aggregate_evaluation(evals: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Means over seeds of one evaluation mode (greedy or sampled) with intervals: t over seeds for
    the overall numbers, Wilson on the pooled counts per difficulty."""
    seeds = list(evals)
    out: dict[str, Any] = {"n_seeds": len(seeds), "n": sum(evals[s]["n"] for s in seeds)}
    intervals: dict[str, Any] = {}
    for key in CHECK_RATES:  # None where a seed had no such steps; absent from results written before them
        est = mean_interval([v for s in seeds if (v := evals[s].get(key)) is not None], bounds=(0.0, 1.0))
        out[key] = est.value
        intervals[key] = est.to_dict()
    for key in ("accuracy", "mean_tokens", "redundant_share", "no_steps_share", "truncated_share"):
        bounds = (0.0, math.inf) if key == "mean_tokens" else (0.0, 1.0)
        est = mean_interval([evals[s][key] for s in seeds if key in evals[s]], bounds=bounds)
        out[key] = est.value
        intervals[key] = est.to_dict()
    for key in ("token_reduction", "accuracy_change", "aes"):
        values = [evals[s][key] for s in seeds if key in evals[s]]
        if values:
            out[key] = sum(values) / len(values)
    levels = difficulty_order(list({k for s in seeds for k in evals[s]["by_difficulty"]}))
    by: dict[str, Any] = {}
    for k in levels:
        cells = [evals[s]["by_difficulty"][k] for s in seeds if k in evals[s]["by_difficulty"]]
        n = sum(c["n"] for c in cells)
        correct = sum(round(c["accuracy"] * c["n"]) for c in cells)
        tokens = mean_interval([c["mean_tokens"] for c in cells])
        by[k] = {
            "n": n,
            "accuracy": correct / n if n else 0.0,
            "mean_tokens": tokens.value,
            "intervals": {"accuracy": wilson(correct, n).to_dict(), "mean_tokens": tokens.to_dict()},
        }
    out["by_difficulty"] = by
    out["intervals"] = intervals
    by_step = [evals[s]["slip_checks_by_step"] for s in seeds if "slip_checks_by_step" in evals[s]]
    if by_step:  # absent from results written before it was measured
        out["slip_checks_by_step"] = pool_by_level(by_step)
    if all("temperature" in evals[s] for s in seeds) and seeds:
        out["temperature"] = evals[seeds[0]]["temperature"]
    return out


def _hardest(values: Mapping[str, Any], hardest: str) -> float | None:
    cell = values["by_difficulty"].get(hardest)
    return None if cell is None else cell["accuracy"]


def _scaled(e: Estimate, by: float) -> Estimate:
    if e.value is None or by == 0:
        return Estimate(None, note=e.note or "no baseline")
    f = 1.0 / by
    low = None if e.low is None else e.low * f
    high = None if e.high is None else e.high * f
    return Estimate(e.value * f, low, high, e.n, e.note)


def vs_baseline(
    runs: Mapping[str, Mapping[str, Any]], spec: str, baseline: str, hardest: str, mode: str = "greedy"
) -> dict[str, dict[str, Any]]:
    """Paired differences spec − baseline: by seed when ≥ 2 seeds have both, else by held-out problem
    within the one seed (see the module doc)."""

    def ev(r: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        got = r["specs"].get(name)
        if got is None:
            return None
        return got if mode == "greedy" else got.get(mode)

    pairs = {s: (ev(r, spec), ev(r, baseline)) for s, r in runs.items()}
    pairs = {s: (a, b) for s, (a, b) in pairs.items() if a is not None and b is not None}
    if not pairs:
        return {}
    if len(pairs) >= 2:
        hard = {s: (_hardest(a, hardest), _hardest(b, hardest)) for s, (a, b) in pairs.items()}
        hard = {s: v for s, v in hard.items() if None not in v}
        return {
            "accuracy": paired_difference(
                {s: a["accuracy"] for s, (a, _) in pairs.items()},
                {s: b["accuracy"] for s, (_, b) in pairs.items()},
                bounds=SHARE_DIFFERENCE,
            ).to_dict(),
            "hardest_accuracy": paired_difference(
                {s: v[0] for s, v in hard.items()}, {s: v[1] for s, v in hard.items()}, bounds=SHARE_DIFFERENCE
            ).to_dict(),
            "mean_tokens": paired_difference(
                {s: a["mean_tokens"] for s, (a, _) in pairs.items()},
                {s: b["mean_tokens"] for s, (_, b) in pairs.items()},
            ).to_dict(),
            "token_change": paired_difference(
                {s: a["mean_tokens"] / b["mean_tokens"] for s, (a, b) in pairs.items() if b["mean_tokens"] > 0},
                {s: 1.0 for s, (_, b) in pairs.items() if b["mean_tokens"] > 0},
                bounds=(-1.0, math.inf),  # a length cannot fall below 0
            ).to_dict(),
        }
    (a, b) = next(iter(pairs.values()))
    ca, cb = a.get("completions"), b.get("completions")
    if not ca or not cb or ca["difficulty"] != cb["difficulty"]:
        return {}
    idx = range(len(ca["tokens"]))
    hard_idx = [i for i in idx if ca["difficulty"][i] == hardest]

    def within(col: str, rows: Sequence[int], bounds: tuple[float, float] | None = None) -> Estimate:
        e = paired_difference({i: float(ca[col][i]) for i in rows}, {i: float(cb[col][i]) for i in rows}, bounds=bounds)
        return Estimate(e.value, e.low, e.high, e.n, WITHIN_SEED if e.has_interval else e.note)

    tokens = within("tokens", list(idx))
    base_mean = sum(cb["tokens"]) / len(cb["tokens"]) if cb["tokens"] else 0.0
    return {
        "accuracy": within("correct", list(idx), SHARE_DIFFERENCE).to_dict(),
        "hardest_accuracy": within("correct", hard_idx, SHARE_DIFFERENCE).to_dict(),
        "mean_tokens": tokens.to_dict(),
        "token_change": _scaled(tokens, base_mean).to_dict(),
    }


def combine(
    runs: Mapping[str, Mapping[str, Any]],
    preset: str,
    baseline: str,
    spec_names: Sequence[str],
    config: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``results.json`` dict (see the module doc) from the per-seed results."""
    ok = _ok_runs(runs)
    failures = [{"seed": int(s), **f} for s, r in runs.items() for f in r.get("failures", [])]
    levels = difficulty_order(list({k for r in ok.values() for k in r["base_policy"]["by_difficulty"]}))
    hardest = levels[-1] if levels else ""
    specs: dict[str, Any] = {}
    for name in spec_names:
        evals = {s: r["specs"][name] for s, r in ok.items() if name in r["specs"]}
        if not evals:
            continue
        agg = aggregate_evaluation(evals)
        if all("sampled" in e for e in evals.values()):
            agg["sampled"] = aggregate_evaluation({s: e["sampled"] for s, e in evals.items()})
            agg["sampled"]["vs_baseline"] = vs_baseline(ok, name, baseline, hardest, "sampled")
        first = next(iter(evals.values()))
        agg.update(
            spec=first["spec"],
            source=first["source"],
            train_seconds=sum(e["train_seconds"] for e in evals.values()) / len(evals),
            vs_baseline=vs_baseline(ok, name, baseline, hardest),
        )
        specs[name] = agg
    base = {s: r["base_policy"] for s, r in ok.items()}
    base_agg = aggregate_evaluation(base) if base else {}
    if base and all("sampled" in b for b in base.values()):
        base_agg["sampled"] = aggregate_evaluation({s: b["sampled"] for s, b in base.items()})
    errors = [b["necessary_trace_errors"] for b in base.values() if "necessary_trace_errors" in b]
    if errors:  # absent from base policies evaluated before it was measured
        base_agg["necessary_trace_errors"] = pool_shares(errors)
    need_levels = difficulty_order(list({k for r in ok.values() for k in r["necessary_tokens"]["by_difficulty"]}))
    necessary = {
        "mean_tokens": _avg([r["necessary_tokens"]["mean_tokens"] for r in ok.values()]),
        "by_difficulty": {
            k: _avg(
                [
                    r["necessary_tokens"]["by_difficulty"][k]
                    for r in ok.values()
                    if k in r["necessary_tokens"]["by_difficulty"]
                ]
            )
            for k in need_levels
        },
    }
    out = {
        "preset": preset,
        **meta,
        "baseline": baseline,
        "seeds": [int(s) for s in runs],
        "seed": int(next(iter(runs))) if runs else None,
        "hardest": hardest,
        "config": dict(config),
        "specs": specs,
        "base_policy": base_agg,
        "necessary_tokens": necessary,
        "failures": failures,
        "runs": {s: dict(r) for s, r in runs.items()},
    }
    out["study"] = analyses(out)
    return out


def _avg(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- the analyses the study report answers -------------------------------------------------


def family(spec: Mapping[str, Any], name: str) -> str | None:
    """``"uniform"``, ``"difficulty-aware"`` or None, from the spec's shapers (and a ``dler`` name)."""
    if name.lower().startswith("dler"):
        return "difficulty-aware"
    shapers = {s.get("name") if isinstance(s, dict) else s for s in spec.get("shaping") or []}
    if shapers & DIFFICULTY_AWARE_SHAPERS:
        return "difficulty-aware"
    if shapers & UNIFORM_SHAPERS:
        return "uniform"
    return None


def is_drpo(spec: Mapping[str, Any]) -> bool:
    objective = spec.get("objective")
    return isinstance(objective, dict) and objective.get("name") == "drpo"


def verdict(vs: Mapping[str, Any]) -> dict[str, Any]:
    """What the paired intervals support: ``cuts_tokens`` (token change < 0), ``loses_hardest`` /
    ``loses_accuracy`` (change < 0), ``keeps_hardest`` / ``keeps_accuracy`` (interval above
    −:data:`KEEP_MARGIN`); None where there is no interval."""
    out: dict[str, Any] = {}
    tok = Estimate.from_dict(vs["token_change"]) if "token_change" in vs else Estimate(None)
    out["cuts_tokens"] = None if tok.sign() is None else tok.sign() == -1
    for key, label in (("accuracy", "accuracy"), ("hardest_accuracy", "hardest")):
        e = Estimate.from_dict(vs[key]) if key in vs else Estimate(None)
        out[f"loses_{label}"] = None if e.sign() is None else e.sign() == -1
        out[f"keeps_{label}"] = None if not e.has_interval else e.low >= -KEEP_MARGIN
    return out


def families(results: Mapping[str, Any]) -> dict[str, Any]:
    """(a) uniform vs difficulty-aware penalties: each spec's family and verdict."""
    out: dict[str, Any] = {}
    for name, agg in results["specs"].items():
        fam = family(agg["spec"], name)
        if fam is None or name == results["baseline"] or is_drpo(agg["spec"]):
            continue
        out[name] = {"family": fam, **verdict(agg.get("vs_baseline", {}))}
    return out


def length_bins(tokens: Sequence[int], correct: Sequence[int], min_bin: int = MIN_BIN) -> list[dict[str, Any]]:
    """Equal-count bins of completions by length (identical lengths never split; at most
    :data:`MAX_BINS`, each ≥ ``min_bin`` when possible), each with its accuracy and Wilson interval."""
    rows = sorted(zip(tokens, correct))
    n = len(rows)
    if n == 0:
        return []
    n_bins = max(1, min(MAX_BINS, n // min_bin))
    target = n / n_bins
    groups: list[list[tuple[int, int]]] = [[]]
    for row in rows:
        if groups[-1] and len(groups[-1]) >= target and row[0] != groups[-1][-1][0] and len(groups) < n_bins:
            groups.append([])
        groups[-1].append(row)
    if len(groups) > 1 and len(groups[-1]) < min_bin:
        groups[-2].extend(groups.pop())
    out = []
    for g in groups:
        hits = sum(c for _, c in g)
        e = wilson(hits, len(g))
        out.append(
            {
                "low": g[0][0],
                "high": g[-1][0],
                "n": len(g),
                "correct": hits,
                "accuracy": e.value,
                "ci_low": e.low,
                "ci_high": e.high,
            }
        )
    return out


def length_accuracy(results: Mapping[str, Any], spec: str | None = None, mode: str = "sampled") -> dict[str, Any]:
    """(b) accuracy against chain length per difficulty, on ``spec``'s completions (default: the
    baseline's sampled ones) pooled over seeds: equal-count length bins with Wilson intervals, the
    peak (argmax) bin, and whether the peak is an interior bin that beats both the shortest and the
    longest bin (Newcombe intervals of the differences excluding 0): an inverted U."""
    spec = spec or results["baseline"]
    cols: dict[str, tuple[list[int], list[int]]] = {}
    for r in _ok_runs(results["runs"]).values():
        ev = r["specs"].get(spec)
        ev = ev if ev is None or mode == "greedy" else ev.get(mode)
        if not ev or "completions" not in ev:
            continue
        c = ev["completions"]
        for k, t, ok in zip(c["difficulty"], c["tokens"], c["correct"]):
            cols.setdefault(k, ([], []))
            cols[k][0].append(t)
            cols[k][1].append(ok)
    per: dict[str, Any] = {}
    for k in difficulty_order(list(cols)):
        bins = length_bins(*cols[k])
        peak = max(range(len(bins)), key=lambda i: (bins[i]["accuracy"], -i)) if bins else None
        entry: dict[str, Any] = {"bins": bins, "peak": peak, "inverted_u": None}
        if peak is not None and len(bins) >= 3:
            p = bins[peak]
            rise = newcombe_difference(p["correct"], p["n"], bins[0]["correct"], bins[0]["n"])
            fall = newcombe_difference(p["correct"], p["n"], bins[-1]["correct"], bins[-1]["n"])
            entry.update(rise=rise.to_dict(), fall=fall.to_dict())
            entry["inverted_u"] = 0 < peak < len(bins) - 1 and rise.sign() == 1 and fall.sign() == 1
        per[k] = entry
    peaks = [(k, (e["bins"][e["peak"]]["low"] + e["bins"][e["peak"]]["high"]) / 2) for k, e in per.items() if e["bins"]]
    return {
        "spec": spec,
        "mode": mode,
        "by_difficulty": per,
        "peak_tokens": dict(peaks),
        "peak_grows": len(peaks) >= 2 and all(b[1] >= a[1] for a, b in zip(peaks, peaks[1:])),
    }


def curve_bands(results: Mapping[str, Any], spec: str, key: str) -> list[tuple[int, Estimate]]:
    """Per training step: the mean of ``key`` over the seeds that logged it, with a t-interval."""
    by_step: dict[int, list[float]] = {}
    for r in _ok_runs(results["runs"]).values():
        for row in (r["specs"].get(spec) or {}).get("curve", []):
            if key in row:
                by_step.setdefault(int(row["step"]), []).append(float(row[key]))
    return [(step, mean_interval(v)) for step, v in sorted(by_step.items())]


def _phase_mean(curve: Sequence[Mapping[str, Any]], key: str, phase: str) -> float | None:
    vals = [float(c[key]) for c in curve if key in c]
    if len(vals) < 3:
        return None
    third = len(vals) // 3
    part = vals[:third] if phase == "early" else vals[-third:]
    return sum(part) / len(part)


def phase_difference(results: Mapping[str, Any], spec: str, other: str, key: str, phase: str) -> Estimate:
    """Paired by seed: spec − other for the mean of ``key`` over the first (``early``) or last
    (``late``) third of the training steps."""
    a, b = {}, {}
    for s, r in _ok_runs(results["runs"]).items():
        x, y = r["specs"].get(spec), r["specs"].get(other)
        if x and y:
            va, vb = _phase_mean(x.get("curve", []), key, phase), _phase_mean(y.get("curve", []), key, phase)
            if va is not None and vb is not None:
                a[s], b[s] = va, vb
    return paired_difference(a, b)


def format_length_study(results: Mapping[str, Any], spec: str = "format_length") -> dict[str, Any] | None:
    """(c) the label-free format-length reward against correctness-only over training."""
    if spec not in results["specs"] or results["baseline"] not in results["specs"]:
        return None
    base = results["baseline"]
    return {
        "spec": spec,
        **{
            f"{phase}_{key}": phase_difference(results, spec, base, key, phase).to_dict()
            for phase in ("early", "late")
            for key in ("accuracy", "mean_tokens")
        },
    }


def _reward_part(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("name", "objective")}


def drpo_study(results: Mapping[str, Any]) -> dict[str, Any]:
    """(d) DRPO against GRPO with a length reward: per spec the mean over training of the share of
    correct rollouts given a negative advantage (``correct_neg_adv_share``; None when not logged),
    and DRPO − comparator paired differences against the GRPO spec with the same reward (other than
    the baseline, which ``vs_baseline`` already covers) and every GRPO length spec."""
    specs = results["specs"]
    neg: dict[str, Any] = {}
    for name in specs:
        per_seed = [
            sum(c[NEG_ADV_KEY] for c in rows) / len(rows)
            for r in _ok_runs(results["runs"]).values()
            if (rows := [c for c in (r["specs"].get(name) or {}).get("curve", []) if NEG_ADV_KEY in c])
        ]
        neg[name] = mean_interval(per_seed).to_dict() if per_seed else None
    drpo = [n for n, a in specs.items() if is_drpo(a["spec"])]
    pairs: dict[str, Any] = {}
    for d in drpo:
        grpo = [n for n, a in specs.items() if not is_drpo(a["spec"]) and n != results["baseline"]]
        same = [n for n in grpo if _reward_part(specs[n]["spec"]) == _reward_part(specs[d]["spec"])]
        for o in same + [n for n in grpo if n not in same and family(specs[n]["spec"], n)]:
            pairs[f"{d} vs {o}"] = vs_baseline(_ok_runs(results["runs"]), d, o, results["hardest"])
    return {"drpo_specs": drpo, "correct_neg_adv_share": neg, "pairs": pairs}


def pareto_points(specs: Mapping[str, Any], mode: str = "greedy") -> list[tuple[float, float]]:
    """(accuracy, tokens) of the specs on the front of the means, by tokens."""
    from .evaluate import pareto_front

    points = {
        n: (ev["accuracy"], ev["mean_tokens"])
        for n, a in specs.items()
        if (ev := a if mode == "greedy" else a.get(mode)) and ev.get("accuracy") is not None
    }
    return [points[n] for n in pareto_front(points)]


def recommended(results: Mapping[str, Any]) -> list[str]:
    """Specs whose token cut is supported (interval below 0) while overall and hardest-bucket
    accuracy are kept (intervals above −:data:`KEEP_MARGIN`); largest cut first. Never for a
    smoke-test preset."""
    if results.get("smoke"):
        return []
    ok = []
    for name, agg in results["specs"].items():
        if name == results["baseline"]:
            continue
        v = verdict(agg.get("vs_baseline", {}))
        if v["cuts_tokens"] and v["keeps_accuracy"] and v["keeps_hardest"]:
            ok.append(name)
    return sorted(ok, key=lambda n: results["specs"][n]["vs_baseline"]["token_change"]["value"])


def analyses(results: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "families": families(results),
        "length_accuracy": length_accuracy(results),
        "format_length": format_length_study(results),
        "drpo": drpo_study(results),
        "recommended": recommended(results),
    }
