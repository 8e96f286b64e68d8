"""Every registered shaper: described, NaN-free on awkward batches (empty, single rollouts, unknown
correctness, truncation, format failures), and recorded under its name in a spec. The list comes
from the registry, each shaper's options from its ``example_options``: a new shaper is covered here
without editing this file."""

import numpy as np
import pytest

from _shaping import make_ctx, recs, run
from rewardsmith import load_spec
from rewardsmith.components import entries
from rewardsmith.shaping import BaseValues

EXTRA = {
    "cosine": {"exceed_penalty": -2.0},
    "truncation": {"no_eos_coef": 0.1},
}  # options worth covering beyond the example
OPTIONS = {e.name: {**e.cls.example_options, **EXTRA.get(e.name, {})} for e in entries("shaper")}
# what the reference-based and target-length shapers read from a record
META = {"target_length": 200, "ref_scores": [0.2, 0.6], "rm": 0.5, "step_rewards": [0.2, 0.9], "turn_progress": [0.5]}


def test_every_shaper_is_described_and_its_example_builds():
    registered = {e.name: e for e in entries("shaper")}
    assert {"kimi", "laser_d", "hapo", "repetition", "par"} <= set(registered)
    for name, entry in registered.items():
        assert entry.description, name
        run(name, make_ctx([10.0, 20.0], [1, 0], metas=[META, META]), **entry.cls.example_options)


def awkward_ctx(seed: int, state: dict):
    rng = np.random.default_rng(seed)
    n = 64
    groups = [f"g{i}" for i in rng.integers(0, 12, size=n)] + ["solo"]  # uneven groups and a single rollout
    correct = rng.choice([1.0, 0.0, None], size=n + 1, p=[0.45, 0.4, 0.15]).tolist()
    lengths = rng.integers(0, 500, size=n + 1).astype(float)
    lengths[:4] = [0, 0, 300, 300]  # zero lengths and equal lengths at the limits
    texts = [
        str(rng.choice(["<think>a b</think> \\boxed{1}", "x y x y x y x y", "plain words here", ""]))
        for _ in range(n + 1)
    ]
    return make_ctx(
        lengths.tolist(),
        correct,
        groups,
        base_values=BaseValues(1.0, -0.5, -1.0),
        answered=(rng.random(n + 1) < 0.9).tolist(),
        format_ok=(rng.random(n + 1) < 0.9).tolist(),
        truncated=(rng.random(n + 1) < 0.1).tolist(),
        completions=texts,
        metas=[META] * (n + 1),
        step=seed,
        state=state,
    )


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_nan_free_on_awkward_batches_over_several_steps(name):
    state = {}
    for seed in range(4):  # stateful shapers see their own history
        run(name, awkward_ctx(seed, state), **OPTIONS[name])


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_empty_batch(name):
    new, comp = run(name, make_ctx([], [], metas=[]), **OPTIONS[name])
    assert new.shape == comp.shape == (0,)


def test_components_are_recorded_under_each_name_in_order():
    spec = {
        "verifier": "exact",
        "length_unit": "words",
        "shaping": [
            {"name": "kimi"},
            {"name": "dapo_overlong", "max_len": 4, "buffer": 2},
            {"name": "kimi", "coef": 0.5},
        ],
    }
    s = load_spec(spec).score(recs([("q", "Answer: 4", "4"), ("q", "so so so. Answer: 4", "4")]))
    assert list(s.components) == ["correctness", "kimi", "dapo_overlong", "kimi_2"]
    assert s.components["kimi"].tolist() == [0.5, -0.5] and s.components["kimi_2"].tolist() == [0.25, -0.25]
    assert s.total.tolist() == [1.75, -0.75]  # 1 + 0.5 + 0 + 0.25; 1 - 0.5 - 1 - 0.25
