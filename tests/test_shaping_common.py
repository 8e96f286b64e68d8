"""Every length shaper: registered, NaN-free on awkward batches (empty, single rollouts, unknown
correctness, truncation, format failures), and recorded under its name in a spec."""

import numpy as np
import pytest
from _shaping import make_ctx, recs, run

from rewardsmith import load_spec
from rewardsmith.components import entries
from rewardsmith.shaping import BaseValues

OPTIONS = {
    "kimi": {}, "cosine": {"max_len": 300, "exceed_penalty": -2.0}, "dapo_overlong": {"max_len": 300, "buffer": 100},
    "truncation": {"max_len": 300, "no_eos_coef": 0.1}, "laser": {"target": 200}, "laser_d": {"lower": 50, "upper": 300, "interval": 50},
    "laser_de": {"lower": 50, "upper": 300, "interval": 50}, "hapo": {}, "grpo_lambda": {}, "l1_exact": {"target": 200},
    "l1_max": {"target": 200}, "efficient_reasoning": {}, "format_length": {"max_len": 300},
    "budget_curriculum": {"start": 300, "end": 100, "every": 2, "apply": "laser"},
}


def test_every_length_shaper_is_registered_with_a_paper():
    registered = {e.name: e for e in entries("shaper")}
    assert set(OPTIONS) | {"repetition"} <= set(registered)
    assert all(registered[name].paper and registered[name].description for name in OPTIONS)


def awkward_ctx(seed: int, state: dict):
    rng = np.random.default_rng(seed)
    n = 64
    groups = [f"g{i}" for i in rng.integers(0, 12, size=n)] + ["solo"]  # uneven groups and a single rollout
    correct = rng.choice([1.0, 0.0, None], size=n + 1, p=[0.45, 0.4, 0.15]).tolist()
    lengths = rng.integers(0, 500, size=n + 1).astype(float)
    lengths[:4] = [0, 0, 300, 300]  # zero lengths and equal lengths at the limits
    texts = [str(rng.choice(["<think>a b</think> \\boxed{1}", "x y x y x y x y", "plain words here", ""])) for _ in range(n + 1)]
    return make_ctx(lengths.tolist(), correct, groups, base_values=BaseValues(1.0, -0.5, -1.0), answered=(rng.random(n + 1) < 0.9).tolist(),
                    format_ok=(rng.random(n + 1) < 0.9).tolist(), truncated=(rng.random(n + 1) < 0.1).tolist(), completions=texts,
                    step=seed, state=state)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_nan_free_on_awkward_batches_over_several_steps(name):
    state = {}
    for seed in range(4):  # stateful shapers see their own history
        run(name, awkward_ctx(seed, state), **OPTIONS[name])


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_empty_batch(name):
    new, comp = run(name, make_ctx([], []), **OPTIONS[name])
    assert new.shape == comp.shape == (0,)


def test_components_are_recorded_under_each_name_in_order():
    spec = {"verifier": "exact", "length_unit": "words",
            "shaping": [{"name": "kimi"}, {"name": "dapo_overlong", "max_len": 4, "buffer": 2}, {"name": "kimi", "coef": 0.5}]}
    s = load_spec(spec).score(recs([("q", "Answer: 4", "4"), ("q", "so so so. Answer: 4", "4")]))
    assert list(s.components) == ["correctness", "kimi", "dapo_overlong", "kimi_2"]
    assert s.components["kimi"].tolist() == [0.5, -0.5] and s.components["kimi_2"].tolist() == [0.25, -0.25]
    assert s.total.tolist() == [1.75, -0.75]  # 1 + 0.5 + 0 + 0.25; 1 - 0.5 - 1 - 0.25
