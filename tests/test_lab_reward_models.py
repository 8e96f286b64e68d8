"""The lab's reward models: preference pairs (hand-checked), the spec placeholder, and (slow) an RM that learns
its pairs and scores through the ordinary ``reward_model`` verifier."""

import random

import pytest

from rewardsmith.lab.reward_models import (
    Candidate,
    Pair,
    lab_rm_kinds,
    preference_pairs,
    prefers,
    resolve_lab_models,
    split_pairs,
)
from rewardsmith.lab.specs import BUILTIN_SPECS
from rewardsmith.registry import SpecError

SHORT_RIGHT = Candidate("<think>1+2=3;</think>####3", True, 7)
LONG_RIGHT = Candidate("<think>1+2=3;so3;</think>####3", True, 9)
SHORT_WRONG = Candidate("<think></think>####4", False, 4)
LONG_WRONG = Candidate("<think>1+2=4;so4;</think>####4", False, 9)
ALL = [SHORT_RIGHT, LONG_RIGHT, SHORT_WRONG, LONG_WRONG]


def test_concise_rm_prefers_correct_then_shorter_among_correct():
    assert prefers("concise", SHORT_RIGHT, LONG_RIGHT) and not prefers("concise", LONG_RIGHT, SHORT_RIGHT)
    assert prefers("concise", LONG_RIGHT, SHORT_WRONG) and prefers("concise", LONG_RIGHT, LONG_WRONG)
    assert not prefers("concise", SHORT_WRONG, LONG_WRONG) and not prefers("concise", LONG_WRONG, SHORT_WRONG)
    pairs = preference_pairs("1+2=", ALL, "concise", limit=100, rng=random.Random(0))
    # 2 correct x 2 wrong + 1 correct-vs-correct; no order among wrong ones
    assert len(pairs) == 5 and len(set(pairs)) == 5
    assert Pair("1+2=", SHORT_RIGHT.response, LONG_RIGHT.response) in pairs


def test_biased_rm_prefers_correct_then_longer_right_or_wrong():
    assert prefers("biased", LONG_RIGHT, SHORT_RIGHT) and prefers("biased", LONG_WRONG, SHORT_WRONG)
    assert prefers("biased", SHORT_RIGHT, LONG_WRONG)  # correctness first
    equal = Candidate("<think>1+2=3;</think>####3 ", True, 7)
    assert not prefers("biased", SHORT_RIGHT, equal) and not prefers("biased", equal, SHORT_RIGHT)
    pairs = preference_pairs("1+2=", ALL, "biased", limit=100, rng=random.Random(0))
    assert len(pairs) == 6
    assert Pair("1+2=", LONG_WRONG.response, SHORT_WRONG.response) in pairs
    assert len(preference_pairs("1+2=", ALL, "biased", limit=2, rng=random.Random(0))) == 2
    assert preference_pairs("1+2=", [SHORT_WRONG, SHORT_WRONG], "biased", 10, random.Random(0)) == []  # duplicates
    with pytest.raises(ValueError, match="kind"):
        prefers("lengthy", SHORT_RIGHT, LONG_RIGHT)


def test_pairs_split_by_prompt():
    per_prompt = [[Pair(str(i), "a", "b"), Pair(str(i), "c", "d")] for i in range(10)]
    train, test = split_pairs(per_prompt, 0.2, seed=0)
    assert len(test) == 4 and len(train) == 16
    assert not {p.prompt for p in train} & {p.prompt for p in test}


def test_lab_rm_placeholder_is_resolved_to_the_trained_directory():
    spec = BUILTIN_SPECS["rm_biased_par"]
    assert lab_rm_kinds(spec) == ["biased"] and lab_rm_kinds(BUILTIN_SPECS["kimi"]) == []
    asked = []

    def trained(kind):
        asked.append(kind)
        return {"path": f"/rm/{kind}", "tokenizer": f"/rm/{kind}/tokenizer"}

    out = resolve_lab_models(spec, trained)
    assert out["verifier"] == {"name": "reward_model", "path": "/rm/biased", "tokenizer": "/rm/biased/tokenizer"}
    assert spec["verifier"]["path"] == "lab-rm:biased" and asked == ["biased"]  # the built-in is left intact
    assert out["shaping"] == [{"name": "par"}]
    assert resolve_lab_models(BUILTIN_SPECS["kimi"], trained) is BUILTIN_SPECS["kimi"]
    with pytest.raises(SpecError, match="lab-rm:concise"):
        lab_rm_kinds({"verifier": {"name": "reward_model", "path": "lab-rm:shiny"}})


@pytest.mark.slow  # samples a tiny policy and trains two tiny reward models (156 s on a loaded 2-core machine)
def test_rm_learns_its_pairs_and_scores_through_the_reward_model_verifier(tmp_path):
    torch = pytest.importorskip("torch")
    from rewardsmith import load_spec
    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer
    from rewardsmith.lab.reward_models import RMConfig, load_or_train_rm
    from rewardsmith.lab.tasks import generate_problems, make_problem, necessary_trace

    torch.set_num_threads(2)
    tok = build_tokenizer()
    policy = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    config = RMConfig(prompts=40, samples=3, max_new_tokens=12, pairs_per_prompt=8, steps=80, batch_size=16, lr=3e-3)
    problems = generate_problems(200, seed=0)
    prompt = make_problem([3, 5, 8]).prompt
    right, longer_right = necessary_trace([3, 5, 8]), "<think>3+5=8;so8;8+8=6;so6;</think>####6"
    wrong = "<think>3+5=8;8+8=7;</think>####7"
    for kind in ("concise", "biased"):
        info = load_or_train_rm(kind, policy, tok, problems, seed=0, config=config, cache_dir=tmp_path)
        assert not info["cached"] and info["held_out_pairs"] > 20
        assert info["held_out_accuracy"] > 0.9, info
        again = load_or_train_rm(kind, policy, tok, problems, seed=0, config=config, cache_dir=tmp_path)
        assert again["cached"] and again["path"] == info["path"]
        name = "rm_concise" if kind == "concise" else "rm_biased_par"
        spec = resolve_lab_models(BUILTIN_SPECS[name], lambda _kind, trained=info: trained)
        with load_spec(spec) as pipe:
            recs = [
                {"prompt_id": "q", "prompt": prompt, "completion": c, "meta": {"reference_responses": [right]}}
                for c in (right, longer_right, wrong)
            ]
            scores = pipe.score(recs)
        assert all(s == "ok" for s in scores.status)
        if kind == "biased":  # PAR: sigmoid(r - r_ref), and the reference itself scores exactly 1/2
            assert scores.total[0] == pytest.approx(0.5) and all(0 < v < 1 for v in scores.total)
