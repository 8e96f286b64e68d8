"""A state file is trusted data: a readable but wrong one is a clear StateError naming the file (never a traceback)."""

import json
import subprocess
import sys

import pytest

from rewardsmith import load_spec
from rewardsmith.state import StateError

RECS = [{"prompt_id": "q", "completion": c, "answer": "4"} for c in ("well so. Answer: 4", "Answer: 4", "Answer: 5")]
HAPO = {"verifier": "exact", "length_unit": "words", "shaping": [{"name": "hapo"}]}
LASER_D = {
    "verifier": "exact",
    "length_unit": "words",
    "shaping": [{"name": "laser_d", "lower": 1, "upper": 4, "interval": 1, "anchor": None, "update_every": 1}],
}
METASTD = {"length_unit": "words", "shaping": [{"name": "meanstd"}, {"name": "minmax"}]}
GRPO_L = {
    "verifier": "exact",
    "length_unit": "words",
    "shaping": [{"name": "grpo_lambda", "penalty": {"name": "hapo"}}],
}


def good_state(spec, tmp_path):
    path = tmp_path / "state.json"
    with load_spec({**spec, "state": str(path)}) as pipe:
        pipe.score(RECS)
        pipe.score(RECS)
    return path, json.loads(path.read_text())


def corrupt(data, dotted, value):
    node = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    "spec, dotted, value, message",
    [
        (HAPO, "step", "abc", r"step: must be an integer in \[0, "),
        (HAPO, "step", -1, r"step: must be an integer"),
        (HAPO, "step", 1e20, r"step: must be an integer"),
        (HAPO, "step", 10**20, r"step: must be an integer"),
        (HAPO, "step", True, r"step: must be an integer"),
        (HAPO, "spec_fingerprint", 7, r"'spec_fingerprint' must be a string"),
        (HAPO, "components", [], r"not a rewardsmith state file"),
        (HAPO, "components.hapo", [1, 2], r"components.hapo: must be an object"),
        (HAPO, "components.hapo.history", [1, 2], r"components.hapo: history: must be an object"),
        (
            HAPO,
            "components.hapo.history.q",
            -1e9,
            r"components.hapo: history\['q'\]: must be a finite number in \[0, inf\]",
        ),
        (HAPO, "components.hapo.history.q", "2", r"history\['q'\]: must be a finite number"),
        (HAPO, "components.hapo.history.q", None, r"history\['q'\]: must be a finite number"),
        (GRPO_L, "components.grpo_lambda.penalty.history.q", -3, r"components.grpo_lambda: history\['q'\]"),
        (LASER_D, "components.laser_d.targets", [1, 2], r"targets: must be a list of 3"),
        (LASER_D, "components.laser_d.targets.0", 1e9, r"targets\[0\]: must be a finite number in \[0, 4\]"),
        (LASER_D, "components.laser_d.updated_at", -5, r"updated_at: must be an integer"),
        (LASER_D, "components.laser_d.history.0.groups", 0, r"history\[0\].groups: must be an integer in \[1, "),
        (LASER_D, "components.laser_d.history.0.covered.0", [1], r"covered\[0\]: must hold 4 counts"),
        (LASER_D, "components.laser_d.history.0.total.1", -2, r"total\[1\]: must be an integer"),
        (METASTD, "components.meanstd.m2", -1.0, r"components.meanstd: m2: must be a finite number in \[0, inf\]"),
        (METASTD, "components.meanstd.count", 2.5, r"count: must be an integer"),
        (METASTD, "components.minmax.min", 99.0, r"components.minmax: min 99.0 > max"),
    ],
)
def test_wrong_values_are_refused_with_the_path(tmp_path, spec, dotted, value, message):
    path, data = good_state(spec, tmp_path)
    path.write_text(json.dumps(corrupt(data, dotted, value)))
    with pytest.raises(StateError, match=message) as info:
        load_spec({**spec, "state": str(path)})
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"version": 1, "spec_fingerprint": "", "step": 0, "components": {"hapo": {"history": {"q": NaN}}}}',
            "non-finite number NaN",
        ),
        (
            '{"version": 1, "spec_fingerprint": "", "step": 0, "components": {"hapo": {"history": {"q": Infinity}}}}',
            "non-finite number Infinity",
        ),
        (
            '{"version": 1, "spec_fingerprint": "", "step": 0, "components": {"hapo": {"history": {"q": 1e999}}}}',
            r"history.q: inf is not a finite",
        ),
        ("[" * 100_000 + "]" * 100_000, "corrupt state file"),
        ('{"version": 1, "step": 0, "components": {}, "extra": 1}', r"unknown keys \['extra'\]"),
    ],
)
def test_non_finite_and_odd_json_is_refused(tmp_path, text, message):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(StateError, match=message):
        load_spec({**HAPO, "state": str(path)})


def test_a_valid_state_still_loads_and_scores_the_same(tmp_path):
    path, _ = good_state(HAPO, tmp_path)
    with load_spec({**HAPO, "state": str(path)}) as pipe:
        assert pipe.state.step == 2 and pipe.state.components["hapo"]["history"] == {"q": 2.0}


def test_cli_reports_a_wrong_state_file_without_a_traceback(tmp_path):
    path, data = good_state(HAPO, tmp_path)
    path.write_text(json.dumps(corrupt(data, "components.hapo.history", [1])))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**HAPO, "state": str(path)}))
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in RECS))
    proc = subprocess.run(
        [sys.executable, "-m", "rewardsmith", "score", str(rollouts), "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}: components.hapo: history: must be an object" in proc.stderr
