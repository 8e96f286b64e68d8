"""Reward-model shapers (PAR and its baselines): hand-computed values, state, errors."""

import json
import math

import numpy as np
import pytest

from rewardsmith import load_spec
from rewardsmith.shaping.reward_model import lsc_reward, par_reward, welford_update


def sig(x):
    return 1 / (1 + math.exp(-x))


def recs(scores, refs=None, lengths=None):
    out = []
    for i, s in enumerate(scores):
        meta = {"rm": s}
        if refs is not None:
            meta["ref_scores"] = refs[i]
        rec = {"prompt_id": f"q{i // 2}", "completion": "x", "meta": meta}
        if lengths is not None:
            rec["num_tokens"] = lengths[i]
        out.append(rec)
    return out


def shape(name, records, **opts):
    unit = "tokens" if "num_tokens" in records[0] else "words"
    return load_spec({"length_unit": unit, "shaping": [{"name": name, "score_key": "rm", **opts}]}).score(records)


def test_par_hand_values_and_bounds():
    s = shape("par", recs([2.0, -1.0], refs=[[2.0, 1.0], 0.0]))
    assert s.total[0] == pytest.approx((sig(0) + sig(1)) / 2)
    assert s.total[1] == pytest.approx(sig(-1))
    big = par_reward(np.array([1e6, -1e6]), [np.array([0.0]), np.array([0.0])])
    assert big.tolist() == [1.0, 0.0] and np.isfinite(big).all()


def test_lsc_and_centered_hand_values():
    refs = [[1.0, 3.0], [0.0]]
    s = shape("lsc", recs([2.0, 0.5], refs=refs))
    r85 = 2.0 + 1.0364333894937898 * (math.sqrt(2.0) + 1e-5)  # sample std of (1, 3) is sqrt(2)
    assert s.total[0] == pytest.approx(math.log(sig(2.0 - r85)), rel=1e-12)
    assert s.total[1] == pytest.approx(math.log(sig(0.5 - 1.0364333894937898e-5)), rel=1e-12)  # one reference: std 0
    assert lsc_reward(np.array([-1e4]), [np.array([0.0])])[0] == pytest.approx(-1e4)  # no overflow to -inf
    c = shape("centered", recs([2.0, 0.5], refs=refs))
    assert c.total.tolist() == pytest.approx([0.0, 0.5])


def test_meanstd_updates_before_normalising_and_persists(tmp_path):
    path = tmp_path / "state.json"
    spec = {"length_unit": "words", "state": str(path), "shaping": [{"name": "meanstd", "score_key": "rm"}]}
    first = load_spec(spec).score(recs([1.0, 3.0]))
    assert first.total.tolist() == pytest.approx([-1.0, 1.0])  # mean 2, population std 1
    second = load_spec(spec).score(recs([5.0]))  # reloaded state: values 1, 3, 5 -> mean 3, var 8/3
    assert second.total[0] == pytest.approx((5 - 3) / math.sqrt(8 / 3))
    assert json.loads(path.read_text())["components"]["meanstd"]["count"] == 3
    single = shape("meanstd", recs([4.0]))
    assert single.total.tolist() == [0.0]  # variance floored, no NaN


def test_clip_and_minmax():
    c = shape("clip", recs([0.0, 2.0, 10.0, 4.0]))  # mean 4, population std sqrt(14)
    sd = math.sqrt(14)
    assert c.total.tolist() == pytest.approx([4 - sd, 2.0, 4 + sd, 4.0])
    m = shape("minmax", recs([1.0, 3.0, 2.0]))
    assert m.total.tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert shape("minmax", recs([2.0, 2.0])).total.tolist() == [0.0, 0.0]


def test_length_penalty_and_reward_so_far():
    s = shape(
        "centered", recs([1.0, 1.0], refs=[[0.0], [0.0]], lengths=[100, 500]), length_penalty=0.01, valid_length=300
    )
    assert s.total.tolist() == pytest.approx([1.0, -1.0])
    pipe = load_spec({"verifier": "exact", "length_unit": "words", "shaping": [{"name": "minmax"}]})
    out = pipe.score(
        [
            {"prompt_id": "q", "completion": "Answer: 4", "answer": "4"},
            {"prompt_id": "q", "completion": "Answer: 3", "answer": "4"},
        ]
    )
    assert out.total.tolist() == [1.0, 0.0]


def test_welford_matches_numpy():
    state = {}
    values = np.random.default_rng(0).normal(size=50)
    welford_update(state, values[:20])
    mean, var = welford_update(state, values[20:])
    assert mean == pytest.approx(values.mean()) and var == pytest.approx(values.var())


def test_errors_name_the_record():
    with pytest.raises(ValueError, match="record 1 has no meta.ref_scores"):
        shape("par", [recs([1.0], refs=[[0.0]])[0], {"prompt_id": "b", "completion": "y", "meta": {"rm": 1.0}}])
    with pytest.raises(ValueError, match=r"record 0: meta.rm must be a finite number"):
        shape("meanstd", [{"prompt_id": "a", "completion": "x", "meta": {"rm": "high"}}])
