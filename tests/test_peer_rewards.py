"""TRL's and open-r1's own reward test cases (their tests/test_rewards.py), as rewardsmith inputs.

The cases live in tests/data/peer_reward_cases.jsonl (source commits in each line's ``source``;
README beside it). A case gives a spec, records and the expected ``format`` / ``total`` /
``correct`` (null: unknown) / component values, a ``spec_error`` the spec must raise, or the
``registered`` names; ``skip`` lines say why a peer case has no rewardsmith equivalent.

A case with ``needs`` depends on work from another branch: it must still fail here
(strict xfail) until that name is added to ``NEEDS_MET``, so it cannot silently rot.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from rewardsmith import SpecError, load_spec
from rewardsmith.components import entries

DATA = Path(__file__).parent / "data" / "peer_reward_cases.jsonl"
CASES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
NEEDS_MET: set[str] = {"trust-reading"}  # its answer-reading rules are merged


def _param(case):
    marks = []
    if case.get("needs") and case["needs"] not in NEEDS_MET:
        marks.append(pytest.mark.xfail(strict=True, reason=f"needs {case['needs']}: {case.get('why', '')}"))
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.fixture(scope="module")
def pipelines():
    """One pipeline per distinct spec (these specs keep no state), closed at the end."""
    made: dict[str, object] = {}
    yield made
    for pipe in made.values():
        pipe.close()


def _score(case, pipelines):
    key = json.dumps(case["spec"], sort_keys=True)
    # a loaded test machine must not turn a verdict into a timeout: the cases test answers, not speed
    pipe = pipelines.get(key) or pipelines.setdefault(key, load_spec({"timeout_s": 120, **case["spec"]}))
    if not case.get("thread"):
        return pipe.score(case["records"])
    out: list = []
    worker = threading.Thread(target=lambda: out.append(pipe.score(case["records"])))
    worker.start()
    worker.join(120)
    assert out, "scoring from a worker thread did not finish"
    return out[0]


@pytest.mark.parametrize("case", [_param(c) for c in CASES if "skip" not in c])
def test_peer_case(case, pipelines):
    if case.get("requires"):
        pytest.importorskip(case["requires"])
    expect = case["expect"]
    if "spec_error" in expect:
        with pytest.raises(SpecError, match=expect["spec_error"]):
            load_spec(case["spec"])
        return
    if "registered" in expect:
        for kind, names in expect["registered"].items():
            assert set(names) <= {e.name for e in entries(kind)}, kind
        return
    scores = _score(case, pipelines)
    tol = case.get("tol", 1e-12)
    for field, want in expect.items():
        got = scores.total if field == "total" else scores.correct if field == "correct" else scores.values[field]
        want = np.array([math.nan if v is None else v for v in want], dtype=np.float64)
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64), want, rtol=0, atol=tol, equal_nan=True, err_msg=f"{field} ({case['id']})"
        )


def test_every_skipped_case_says_why_and_ids_are_unique():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case["source"].endswith(":tests/test_rewards.py") and "@" in case["source"]
        if "skip" in case:
            assert len(case["skip"]) > 30, case["id"]
    readme = (DATA.parent / "peer_reward_cases.md").read_text(encoding="utf-8")
    for case in CASES:
        if "skip" in case or "needs" in case:
            assert case["id"] in readme, f"{case['id']} is skipped or deferred but not listed in peer_reward_cases.md"
