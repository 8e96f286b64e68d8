"""The lab's built-in specs: all load, the shipped YAML copies match them, selection rules."""

from pathlib import Path

import pytest

from rewardsmith import load_spec
from rewardsmith.lab.specs import BASELINE, BUILTIN_NAMES, BUILTIN_SPECS, DEFAULT_NAMES, EXTRA_NAMES, select_specs
from rewardsmith.lab.train import split_objective
from rewardsmith.spec import read_spec_file

YAML_DIR = Path(__file__).resolve().parent.parent / "examples" / "specs" / "lab"


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_spec_loads_and_matches_its_yaml(name):
    load_spec(split_objective(BUILTIN_SPECS[name])[1]).close()
    assert read_spec_file(YAML_DIR / f"{name}.yaml") == BUILTIN_SPECS[name]


def test_builtins_use_tokens_and_the_task_verifier():
    assert BUILTIN_NAMES[0] == BASELINE
    assert set(BUILTIN_NAMES) == {
        "correctness",
        "kimi",
        "laser",
        "laser_d",
        "hapo",
        "truncation",
        "grpo_lambda",
        "format_length",
        "l1_max",
        "dler",
        "drpo",
        "pear",
        "sar",
        "rm_concise",
        "rm_biased_raw",
        "rm_biased_par",
    }
    for name, spec in BUILTIN_SPECS.items():
        assert spec["length_unit"] == "tokens"
        if name.startswith("rm_"):  # a reward model the lab trains replaces the rule verifier
            assert spec["verifier"]["name"] == "reward_model" and spec["verifier"]["path"].startswith("lab-rm:")
        else:
            assert spec["verifier"] == {"name": "exact", "extract": ["hash"]}
    assert BUILTIN_SPECS["drpo"]["objective"]["name"] == "drpo"
    assert BUILTIN_SPECS["sar"]["signals"] == BUILTIN_SPECS["pear"]["signals"] == {"model": "policy"}


def test_select_specs():
    assert [s.name for s in select_specs([], [])] == list(DEFAULT_NAMES)
    assert not set(DEFAULT_NAMES) & set(EXTRA_NAMES) and set(DEFAULT_NAMES) | set(EXTRA_NAMES) == set(BUILTIN_NAMES)
    assert [s.name for s in select_specs(["rm_biased_par", "sar"], [])] == ["correctness", "sar", "rm_biased_par"]
    assert [s.name for s in select_specs(["kimi"], [])] == ["correctness", "kimi"]
    user = [
        ("mine", {"verifier": "exact"}, "a.yaml"),
        ("kimi", {"name": "kimi", "verifier": "exact"}, "b.yaml"),
        ("x", {"name": "kimi"}, "c.yaml"),
    ]
    picked = select_specs(["hapo"], user)
    assert [s.name for s in picked] == ["correctness", "hapo", "mine", "kimi", "kimi_2"]
    assert picked[2].spec == {"verifier": "exact", "name": "mine"} and picked[2].source == "a.yaml"
    with pytest.raises(ValueError):
        select_specs(["nope"], [])
    picked[0].spec["shaping"].append("x")  # copies: the built-ins stay intact
    assert BUILTIN_SPECS[BASELINE]["shaping"] == []


def test_budgets_cover_the_hardest_problems_necessary_length():
    """A budget below a hard problem's necessary length would make it unsolvable: every budget is at
    or above the longest necessary trace among the held-out hardest problems of seeds 0-2, in both slip tasks."""
    from rewardsmith.lab.specs import HARD_BUDGET
    from rewardsmith.lab.tasks import annotate, train_test_split

    longest = {
        task: max(
            annotate(p.necessary_trace, task).tokens + 1  # + EOS
            for seed in range(3)
            for p in train_test_split(0, 600, seed, task=task)[1]
            if p.difficulty == 7
        )
        for task in ("carry", "rounding")
    }
    assert longest == {"carry": 62, "rounding": 62} and max(longest.values()) <= HARD_BUDGET
    longest = max(longest.values())
    budgets = [
        option
        for spec in BUILTIN_SPECS.values()
        for shaper in spec["shaping"]
        for key, option in shaper.items()
        if key in ("max_len", "target")
    ]
    assert budgets and min(budgets) >= longest


def test_dler_spec_trains_with_batch_normalization():
    from rewardsmith.lab.train import scale_rewards_for
    from rewardsmith.registry import SpecError

    assert scale_rewards_for(BUILTIN_SPECS["dler"], "group") == "batch"
    assert scale_rewards_for(BUILTIN_SPECS["kimi"], "group") == "group"
    assert scale_rewards_for({"advantage": "dr_grpo"}, "group") == "none"
    with pytest.raises(SpecError):
        scale_rewards_for({"advantage": {"name": "rloo"}}, "group")
