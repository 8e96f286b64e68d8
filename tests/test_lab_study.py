"""The multi-seed study: aggregate and paired intervals, the analyses (a)-(d), the smoke guard,
plots that stay inside their data, and resumable runs with recorded failures (no training: synthetic
per-seed results and stand-ins for SFT/GRPO)."""

import json
import math

import pytest

from _lab_results import PROFILES, combine_runs, combined, seed_run
from rewardsmith.lab.intervals import ONE_SEED, mean_interval, wilson
from rewardsmith.lab.report import study_markdown, terminal_table, write_report
from rewardsmith.lab.study import (
    KEEP_MARGIN,
    WITHIN_SEED,
    family,
    length_accuracy,
    length_bins,
    recommended,
)


def test_aggregate_pools_buckets_and_pairs_by_seed():
    r = combined()
    runs = r["runs"]
    kimi = r["specs"]["kimi"]
    # accuracy = mean over seeds with a t-interval over the three per-seed values
    per_seed = [runs[s]["specs"]["kimi"]["accuracy"] for s in ("0", "1", "2")]
    est = mean_interval(per_seed)
    assert kimi["accuracy"] == pytest.approx(est.value) and kimi["intervals"]["accuracy"]["low"] == pytest.approx(
        est.low
    )
    # per difficulty: Wilson on the counts pooled over seeds
    hits = sum(round(runs[s]["specs"]["kimi"]["by_difficulty"]["8"]["accuracy"] * 40) for s in ("0", "1", "2"))
    cell = kimi["by_difficulty"]["8"]
    assert cell["n"] == 120 and cell["accuracy"] == pytest.approx(hits / 120)
    assert cell["intervals"]["accuracy"]["low"] == pytest.approx(wilson(hits, 120).low)
    # paired by seed: the hardest bucket's change is the mean of the per-seed differences
    diffs = [
        runs[s]["specs"]["kimi"]["by_difficulty"]["8"]["accuracy"]
        - runs[s]["specs"]["correctness"]["by_difficulty"]["8"]["accuracy"]
        for s in ("0", "1", "2")
    ]
    hard = kimi["vs_baseline"]["hardest_accuracy"]
    assert r["hardest"] == "8" and hard["value"] == pytest.approx(sum(diffs) / 3) and hard["n"] == 3
    assert hard["low"] == pytest.approx(mean_interval(diffs).low)
    tc = kimi["vs_baseline"]["token_change"]
    ratios = [
        runs[s]["specs"]["kimi"]["mean_tokens"] / runs[s]["specs"]["correctness"]["mean_tokens"] - 1 for s in "012"
    ]
    assert tc["value"] == pytest.approx(sum(ratios) / 3) and tc["high"] < 0
    # the DESIGN contract keys stay at the top level
    for a in r["specs"].values():
        assert 0 <= a["accuracy"] <= 1 and a["mean_tokens"] > 0 and set(a["by_difficulty"]) == {"2", "4", "8"}
    json.dumps(r, allow_nan=False)


def test_one_seed_pairs_within_the_seed_and_says_so():
    r = combined(seeds=(5,))
    kimi = r["specs"]["kimi"]
    assert kimi["intervals"]["accuracy"]["note"] == ONE_SEED and kimi["intervals"]["accuracy"]["low"] is None
    acc = kimi["vs_baseline"]["accuracy"]
    assert acc["note"] == WITHIN_SEED and acc["n"] == 120 and acc["low"] < acc["value"] < acc["high"]
    a, b = (r["runs"]["5"]["specs"][n]["completions"]["correct"] for n in ("kimi", "correctness"))
    assert acc["value"] == pytest.approx((sum(a) - sum(b)) / 120)
    md = study_markdown(r)
    assert "one seed: no interval over seeds" in md


def test_a_failed_spec_is_recorded_and_left_out():
    runs = {
        "0": seed_run(0),
        "1": seed_run(1, fail=("kimi",)),
        "2": {
            "seed": 2,
            "specs": {},
            "failures": [{"spec": n, "stage": "sft", "error": "OSError: disk", "traceback": ""} for n in PROFILES],
        },
    }
    r = combine_runs(runs, PROFILES)
    assert r["specs"]["kimi"]["n_seeds"] == 1 and r["specs"]["laser_d"]["n_seeds"] == 2
    assert {(f["seed"], f["spec"]) for f in r["failures"]} >= {(1, "kimi"), (2, "correctness")}
    md = study_markdown(r)
    assert "failed run(s)" in md and "seed 1, kimi (rl): RuntimeError: boom" in md
    # a spec whose baseline failed on every paired seed has no paired change
    runs["1"] = seed_run(1, fail=("correctness",))
    r = combine_runs(runs, PROFILES)
    assert r["specs"]["laser_d"]["vs_baseline"]["accuracy"]["note"] == WITHIN_SEED  # only seed 0 pairs


def test_families_and_verdicts():
    assert family({"shaping": [{"name": "kimi"}]}, "kimi") == "uniform"
    assert family({"shaping": [{"name": "l1_max", "target": 20}]}, "l1_tight") == "uniform"
    assert family({"shaping": [{"name": "hapo"}]}, "hapo") == "difficulty-aware"
    assert family({"shaping": [{"name": "truncation"}]}, "dler_da") == "difficulty-aware"
    assert family({"shaping": []}, "correctness") is None
    fam = combined()["study"]["families"]
    assert fam["kimi"]["family"] == "uniform" and fam["kimi"]["cuts_tokens"] and fam["kimi"]["loses_hardest"]
    assert fam["laser_d"]["family"] == "difficulty-aware" and fam["laser_d"]["loses_hardest"] is False
    assert "format_length" not in fam


def _vs(tokens, acc, hard):
    def est(v):
        return {"value": v[0], "low": v[1], "high": v[2], "n": 3, "note": ""}

    return {"token_change": est(tokens), "accuracy": est(acc), "hardest_accuracy": est(hard)}


def test_recommended_only_when_the_intervals_support_it():
    specs = {
        "correctness": {"vs_baseline": {}},
        "good": {"vs_baseline": _vs((-0.3, -0.4, -0.2), (0.0, -0.02, 0.02), (-0.01, -0.04, 0.02))},
        "better": {"vs_baseline": _vs((-0.5, -0.6, -0.4), (0.0, -0.01, 0.01), (0.0, -0.03, 0.03))},
        "wide": {"vs_baseline": _vs((-0.3, -0.4, -0.2), (0.0, -0.2, 0.2), (0.0, -0.3, 0.3))},
        "no_cut": {"vs_baseline": _vs((-0.1, -0.3, 0.1), (0.0, -0.01, 0.01), (0.0, -0.01, 0.01))},
        "edge": {"vs_baseline": _vs((-0.3, -0.4, -0.2), (0.0, -KEEP_MARGIN, 0.01), (0.0, -KEEP_MARGIN - 1e-9, 0.0))},
    }
    results = {"preset": "study", "baseline": "correctness", "specs": specs}
    assert recommended(results) == ["better", "good"]
    assert recommended({**results, "smoke": True}) == []


def test_length_bins_never_split_equal_lengths():
    tokens = [10] * 25 + [11] * 5 + list(range(20, 60))
    correct = [1] * len(tokens)
    bins = length_bins(tokens, correct)
    assert sum(b["n"] for b in bins) == len(tokens)
    assert all(b["low"] <= b["high"] for b in bins) and all(a["high"] < b["low"] for a, b in zip(bins, bins[1:]))
    assert bins[0]["low"] == 10 and bins[0]["n"] >= 25  # the 25 tens stay together
    assert all(b["n"] >= 20 for b in bins)
    assert length_bins([], []) == []
    assert length_bins([5, 6], [0, 1])[0]["n"] == 2  # fewer than MIN_BIN: one bin


def test_length_accuracy_finds_an_inverted_u():
    run = seed_run(0)
    comp = {"difficulty": [], "tokens": [], "correct": []}
    for t, acc in ((10, 0.1), (20, 0.95), (30, 0.1)):  # short and long wrong, middle right
        for i in range(40):
            comp["difficulty"].append("8")
            comp["tokens"].append(t)
            comp["correct"].append(int(i < acc * 40))
    run["specs"]["correctness"]["sampled"]["completions"] = comp
    r = {"baseline": "correctness", "runs": {"0": run}}
    la = length_accuracy(r)
    e = la["by_difficulty"]["8"]
    assert [b["low"] for b in e["bins"]] == [10, 20, 30] and e["peak"] == 1 and e["inverted_u"] is True
    assert e["rise"]["low"] > 0 and e["fall"]["low"] > 0
    comp["correct"] = [1] * 120  # flat: the peak is the first bin, no inverted U
    assert length_accuracy(r)["by_difficulty"]["8"]["inverted_u"] is False


def test_drpo_section_reports_the_share_or_not_measured():
    from rewardsmith.lab.specs import BUILTIN_SPECS

    profiles = {**PROFILES, "drpo": PROFILES["kimi"]}
    r = combined(profiles=profiles)
    assert "| drpo | DRPO | not measured |" in study_markdown(r)  # the metric was not logged
    assert r["study"]["drpo"]["drpo_specs"] == ["drpo"]  # the built-in drpo spec
    assert "No DRPO spec was run" in study_markdown(combined())
    # with a DRPO spec and the metric logged
    runs = {str(s): seed_run(s, profiles=profiles, neg_adv={"drpo": 0.0, "kimi": 0.3}) for s in (0, 1, 2)}
    for run in runs.values():
        run["specs"]["drpo"]["spec"] = {**BUILTIN_SPECS["kimi"], "objective": {"name": "drpo"}}
    r = combine_runs(runs, profiles)
    d = r["study"]["drpo"]
    assert d["drpo_specs"] == ["drpo"] and d["correct_neg_adv_share"]["kimi"]["value"] == pytest.approx(0.3, abs=0.01)
    assert d["correct_neg_adv_share"]["correctness"] is None
    assert list(d["pairs"]) == ["drpo vs kimi", "drpo vs laser_d"]  # the same reward first, then length specs
    md = study_markdown(r)
    assert "| drpo | DRPO | 0.00" in md and "| correctness | GRPO | not measured |" in md


def test_check_selectivity_section_pools_rates_over_seeds_and_skips_missing_ones():
    assert "## Check selectivity" not in study_markdown(combined())  # results written before the rates
    runs = {str(s): seed_run(s) for s in (0, 1, 2)}
    for s, run in runs.items():
        run["base_policy"].update(slip_check_rate=0.6 + 0.1 * int(s), right_check_rate=0.5)
        run["specs"]["kimi"]["sampled"].update(slip_check_rate=0.1, right_check_rate=None if s == "0" else 0.2)
    r = combine_runs(runs, PROFILES)
    assert r["base_policy"]["slip_check_rate"] == pytest.approx(0.7)
    assert r["base_policy"]["intervals"]["right_check_rate"]["note"] == "zero variance across seeds"
    kimi = r["specs"]["kimi"]["sampled"]
    assert kimi["right_check_rate"] == pytest.approx(0.2) and kimi["intervals"]["right_check_rate"]["n"] == 2
    assert r["specs"]["laser_d"]["slip_check_rate"] is None
    md = study_markdown(r)
    assert "## Check selectivity" in md
    assert "| (base policy, no RL) | 0.70 [" in md and "| kimi | – | – | 0.10 [0.10, 0.10] | 0.20 [0.20, 0.20] |" in md
    assert "hardly checks where it errs" not in md  # no sampled rates for the base policy
    for run in runs.values():
        run["base_policy"]["sampled"].update(slip_check_rate=0.65, right_check_rate=0.57)
    assert "checks 0.65 of its slipped steps and re-checks 0.57" in study_markdown(combine_runs(runs, PROFILES))
    for run in runs.values():
        run["base_policy"]["sampled"].update(slip_check_rate=0.94)
    assert "hardly checks where it errs" not in study_markdown(combine_runs(runs, PROFILES))


def test_necessary_trace_errors_pool_over_seeds_with_wilson_intervals():
    runs = {str(s): seed_run(s) for s in (0, 1, 2)}
    for run in runs.values():
        run["base_policy"].update(slip_check_rate=0.9, right_check_rate=0.5)
    assert "necessary_trace_errors" not in combine_runs(runs, PROFILES)["base_policy"]  # older base policies
    shares = {"0": (0.5, 0.0), "1": (0.25, 0.0), "2": None}  # seed 2 evaluated before the measure: left out
    for s, run in runs.items():
        if shares[s]:
            hard, easy = shares[s]
            run["base_policy"]["necessary_trace_errors"] = {
                "share": (hard * 20 + easy * 20) / 40,
                "n": 40,
                "by_difficulty": {"2": {"share": easy, "n": 20}, "8": {"share": hard, "n": 20}},
            }
    errors = combine_runs(runs, PROFILES)["base_policy"]["necessary_trace_errors"]
    # pooled: k = 8 has 10 + 5 wrong of 40, k = 2 none of 40; overall 15 of 80
    assert errors["share"] == pytest.approx(15 / 80) and errors["n"] == 80
    assert errors["by_difficulty"]["8"]["share"] == pytest.approx(15 / 40)
    assert errors["by_difficulty"]["8"]["interval"] == wilson(15, 40).to_dict()
    assert errors["by_difficulty"]["2"]["share"] == 0.0 and list(errors["by_difficulty"]) == ["2", "8"]
    md = study_markdown(combine_runs(runs, PROFILES))
    assert "Can the base policy compute without the redundancy?" in md
    assert f"k=8 0.38 [{wilson(15, 40).low:.2f}, {wilson(15, 40).high:.2f}]" in md


def test_slip_checks_by_step_pool_over_seeds_and_show_in_the_report():
    runs = {str(s): seed_run(s) for s in (0, 1, 2)}
    for run in runs.values():
        run["base_policy"].update(slip_check_rate=0.9, right_check_rate=0.5)
    assert "slip_checks_by_step" not in combine_runs(runs, PROFILES)["specs"]["kimi"]  # written before it
    for s, run in runs.items():
        if s != "2":  # seed 2 evaluated before the measure: left out
            run["specs"]["kimi"]["slip_checks_by_step"] = {"3": {"n": 10, "share": 0.5 - 0.2 * int(s)}}
            run["base_policy"]["sampled"]["slip_checks_by_step"] = {
                "3": {"n": 4, "share": 1.0},
                "4": {"n": 6, "share": 0.5},
            }
    r = combine_runs(runs, PROFILES)
    kimi = r["specs"]["kimi"]["slip_checks_by_step"]
    assert kimi == {"3": {"share": 8 / 20, "n": 20, "interval": wilson(8, 20).to_dict()}}  # 5 + 3 of 10 + 10
    base = r["base_policy"]["sampled"]["slip_checks_by_step"]
    assert (base["3"]["share"], base["3"]["n"], base["4"]["share"], base["4"]["n"]) == (1.0, 8, 0.5, 12)
    md = study_markdown(r)
    low, high = wilson(8, 20).low, wilson(8, 20).high
    assert "| spec | step 3 | step 4 |" in md
    assert f"| kimi | 0.40 [{low:.2f}, {high:.2f}] (n=20) | – |" in md
    assert "| (base policy, no RL; sampled) | 1.00 [" in md and "| laser_d | – | – |" in md


def test_smoke_report_names_no_best_spec(tmp_path):
    r = combined(seeds=(0,), smoke=True, preset="tiny")
    report = write_report(r, tmp_path).read_text()
    assert report.splitlines()[2].startswith("> **Smoke test.**")
    for phrase in ("Recommended", "Best AES", "Pareto", "front", "best spec is"):
        assert phrase not in report.replace("no best spec, front or recommendation", "")
    seed_report = (tmp_path / "seeds" / "0" / "report.md").read_text()
    assert "Smoke test" in seed_report and "Best AES" not in seed_report and "collapsed" not in seed_report
    from rewardsmith.lab.plots import plot_accuracy_vs_tokens

    fig = plot_accuracy_vs_tokens(r)
    assert all("front" not in t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())


def test_study_report_and_table(tmp_path):
    r = combined()
    report = write_report(r, tmp_path).read_text()
    for section in ("## Conclusion", "## (a)", "## (b)", "## (c)", "## (d)", "| kimi | uniform | 3 |"):
        assert section in report
    assert "Lost hardest-bucket accuracy (interval below 0): **kimi**" in report
    for name in ("accuracy_vs_tokens.png", "by_difficulty.png", "length_accuracy.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "curves_drpo.png").exists()  # nothing logged: no empty plot
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == [0, 1, 2]
    table = terminal_table(r)
    assert "kimi" in table and "[" in table


# --- plots stay inside their data and draw no empty panel -------------------------------------


def _data_extent(ax):
    """(xmin, xmax, ymin, ymax) of every point drawn on ``ax`` (lines and error-bar segments)."""
    import numpy as np

    xs, ys = [], []
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if line.get_transform() == ax.transData:
            xs += list(x[np.isfinite(x)])
            ys += list(y[np.isfinite(y)])
    from matplotlib.collections import PathCollection

    for coll in ax.collections:
        if isinstance(coll, PathCollection):  # scatter: marker shapes in points, positions in offsets
            offs = np.asarray(coll.get_offsets())
            xs += list(offs[:, 0])
            ys += list(offs[:, 1])
            continue
        for path in coll.get_paths():  # error bars, bands: vertices in data coordinates
            v = path.vertices
            xs += list(v[:, 0])
            ys += list(v[:, 1])
    return xs, ys


def _check_figure(fig):
    assert fig is not None and fig.axes
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        xs, ys = _data_extent(ax)
        assert xs and ys, f"empty panel: {ax.get_title()}"
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        tol = 1e-9
        assert min(xs) >= x0 - tol and max(xs) <= x1 + tol, ax.get_title()
        assert min(ys) >= y0 - tol and max(ys) <= y1 + tol, ax.get_title()
        if "accuracy" in ax.get_ylabel() or ax.get_ylabel() == "share":
            assert y0 >= 0.0 and y1 <= 1.0, (ax.get_title(), y0, y1)
        if "tokens" in ax.get_ylabel() or "tokens" in ax.get_xlabel():
            assert (y0 if "tokens" in ax.get_ylabel() else x0) >= 0.0
        # no overlapping free text: names live in legends only
        assert not ax.texts


@pytest.mark.parametrize("seeds", [(0, 1, 2), (0,)])
def test_plots_stay_in_range_with_no_empty_panels(seeds):
    import matplotlib.pyplot as plt

    from rewardsmith.lab.report import figures

    r = combined(seeds=seeds)
    figs = figures(r)
    assert set(figs) >= {"accuracy_vs_tokens.png", "by_difficulty.png", "length_accuracy.png", "curves.png"}
    for fig in figs.values():
        _check_figure(fig)
        plt.close(fig)


def test_panels_without_data_are_dropped():
    import matplotlib.pyplot as plt

    from rewardsmith.lab.plots import plot_curves, plot_length_accuracy

    r = combined()
    for run in r["runs"].values():  # no spec logged redundancy or the DRPO metric
        for spec in run["specs"].values():
            for row in spec["curve"]:
                row.pop("redundant_share", None)
    fig = plot_curves(r)
    assert [ax.get_title() for ax in fig.axes] == ["rollout accuracy", "mean completion tokens"]
    plt.close(fig)
    study = dict(r["study"]["length_accuracy"])
    study["by_difficulty"] = {**study["by_difficulty"], "9": {"bins": [], "peak": None, "inverted_u": None}}
    fig = plot_length_accuracy(study)
    assert len(fig.axes) == 3 and all("k=9" not in ax.get_title() for ax in fig.axes)
    plt.close(fig)
    assert plot_length_accuracy({"by_difficulty": {}, "spec": "x", "mode": "sampled"}) is None
    # accuracy at the ceiling: the axis stops at 1
    r = combined(profiles={"correctness": ((1.0, 1.0, 1.0), (20, 40, 80)), "kimi": ((1.0, 1.0, 1.0), (10, 20, 40))})
    from rewardsmith.lab.plots import plot_accuracy_vs_tokens

    fig = plot_accuracy_vs_tokens(r)
    _check_figure(fig)
    assert math.isclose(fig.axes[0].get_ylim()[1], 1.0)
    plt.close(fig)


# --- resumable runs: finished (seed, spec) pairs are skipped, failures recorded and retried -------


def test_run_lab_resumes_and_records_failures(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import rewardsmith.lab.run as run_mod
    import rewardsmith.lab.sft as sft_mod
    import rewardsmith.lab.train as train_mod
    from rewardsmith.lab.presets import PRESETS
    from rewardsmith.lab.specs import select_specs

    specs = select_specs(["kimi", "laser_d"], [])
    trained: list[tuple[int, str]] = []
    broken = {"kimi"}

    def fake_sft(config, problems, seed, **_):
        return object(), object(), {"key": f"k{seed}", "path": "-", "cached": True, "seconds": 0.0, "losses": [0.1]}

    def fake_train(model, tokenizer, spec, problems, config, seed, **_):
        if spec["name"] in broken:
            raise RuntimeError("reward exploded")
        trained.append((seed, spec["name"]))
        return {"name": spec["name"], "seed": seed}, [{"step": 1, "reward": 0.0, "accuracy": 0.5}]

    def fake_eval(model, tokenizer, problems, max_new_tokens, sample_temperature=0.0, seed=0, **_):
        import random

        from _lab_results import evaluation

        name = model["name"] if isinstance(model, dict) else "base"
        return evaluation(PROFILES.get(name, PROFILES["correctness"]), random.Random(f"{seed}{name}"))

    monkeypatch.setattr(sft_mod, "load_or_train", fake_sft)
    monkeypatch.setattr(train_mod, "train_spec", fake_train)
    monkeypatch.setattr(run_mod, "evaluate_policy", fake_eval)
    monkeypatch.setattr(run_mod, "necessary_tokens", lambda test, tok: {"mean_tokens": 20.0, "by_difficulty": {}})
    monkeypatch.setattr(
        run_mod, "necessary_trace_errors", lambda model, tok, test: {"share": None, "n": 0, "by_difficulty": {}}
    )
    preset = PRESETS["tiny"]
    out = tmp_path / "study"
    log: list[str] = []
    r = run_mod.run_lab(preset, specs, "cpu", (0, 1), out, threads=None, log=log.append)
    assert sorted(trained) == [(0, "correctness"), (0, "laser_d"), (1, "correctness"), (1, "laser_d")]
    assert [(f["seed"], f["spec"]) for f in r["failures"]] == [(0, "kimi"), (1, "kimi")]
    assert "kimi" not in r["specs"] and r["specs"]["laser_d"]["n_seeds"] == 2
    assert any(m.startswith("seed 2/2 (seed 1)") for m in log)
    assert json.loads((out / "seeds" / "0" / "kimi.json").read_text())["error"] == "RuntimeError: reward exploded"
    assert "result" in json.loads((out / "seeds" / "1" / "laser_d.json").read_text())

    # the rerun trains only the failed pairs; everything else is loaded
    trained.clear()
    broken.clear()
    r = run_mod.run_lab(preset, specs, "cpu", (0, 1), out, threads=None, log=log.append)
    assert sorted(trained) == [(0, "kimi"), (1, "kimi")] and r["failures"] == []
    assert r["specs"]["kimi"]["n_seeds"] == 2 and r["runs"]["1"]["loaded"] == ["correctness", "laser_d"]
    assert "4 (seed, spec) pairs were loaded, not trained" in study_markdown(r)
    # a changed preset does not reuse the stored pairs
    trained.clear()
    from dataclasses import replace

    run_mod.run_lab(replace(preset, n_test=preset.n_test + 6), specs, "cpu", (0,), out, threads=None, log=log.append)
    assert len(trained) == 3


def test_every_seed_failing_still_writes_a_report(tmp_path):
    failed = {
        "seed": 0,
        "specs": {},
        "failures": [{"spec": n, "stage": "sft", "error": "OSError: disk full", "traceback": ""} for n in PROFILES],
    }
    runs = {"0": failed, "1": {**failed, "seed": 1}}
    from rewardsmith.lab.study import combine

    r = combine(
        runs,
        "study",
        "correctness",
        list(PROFILES),
        {"n_test": 1},
        {"seconds": 1.0, "device": "cpu", "threads": 2, "cpu_count": 2},
    )
    assert r["specs"] == {} and len(r["failures"]) == 2 * len(PROFILES) and r["study"]["recommended"] == []
    report = write_report(r, tmp_path).read_text()
    assert "No seed produced a base policy" in report and "OSError: disk full" in report
    assert not list(tmp_path.glob("*.png"))


def test_legends_sit_outside_the_data():
    """A legend inside an axes can hide points; every legend is placed to the right of its axes."""
    import matplotlib.pyplot as plt

    from rewardsmith.lab.report import figures

    for name, fig in figures(combined()).items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1 - 1, name
        plt.close(fig)
