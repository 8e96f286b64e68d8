"""Early rejection with partial reward models, on a tiny locally built policy and reward model."""

import pytest

torch = pytest.importorskip("torch")

from rewardsmith.generation.early_rejection import (  # noqa: E402
    RejectionTradeoff,
    compare_rejection,
    partial_beam_search,
    reward_model_scorer,
)
from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def policy():
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    model.eval()
    return model, tok


def positional_score(prompt, beams):
    """A deterministic stand-in reward: a position-weighted checksum of the beam's tokens."""
    return [float(sum((j + 1) * t for j, t in enumerate(b)) % 101) + 1e-3 * len(b) for b in beams]


def search(model, tok, prompt, reject, seed=0, scorer=positional_score):
    torch.manual_seed(seed)
    semicolon = tok.convert_tokens_to_ids(";")
    return partial_beam_search(
        model,
        prompt,
        scorer,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        step_end_ids=[semicolon],
        num_beams=4,
        beam_width=2,
        tau=2,
        step_tokens=8,
        max_steps=3,
        reject=reject,
    )


def new_tokens(rounds, beam_width=2, eos=None):
    """Tokens the policy must have produced, from the recorded beams: per round, each candidate's growth over
    its parent plus (with rejection) each survivor's completion."""
    total, parents = 0, [[]]
    for r in rounds:
        total += sum(map(len, r["candidates"])) - beam_width * sum(map(len, parents))
        total += sum(map(len, r["completed"])) - sum(map(len, r["survivors"]))
        parents = [b for b in r["completed"] if not (b and b[-1] == eos)]
    return total


def test_survivors_are_the_top_scored_partial_beams(policy):
    model, tok = policy
    prompt = tok("3+4=", add_special_tokens=False)["input_ids"]
    res = search(model, tok, prompt, reject=True)
    assert res.rounds, "at least one step"
    for i, r in enumerate(res.rounds):
        assert len(r["candidates"]) == 2 * (
            1 if i == 0 else len([b for b in res.rounds[i - 1]["completed"] if b[-1] != tok.eos_token_id])
        )
        assert all(len(c) - len(p) <= 2 for c, p in zip(r["candidates"], [[]] * 2)) if i == 0 else True  # τ = 2 tokens
        ranked = sorted(zip(r["scores"], map(tuple, r["candidates"])), reverse=True)
        assert [tuple(s) for s in r["survivors"]] == [c for _, c in ranked[:2]]  # keep num_beams // beam_width = 2
        assert r["scores"] == positional_score(prompt, r["candidates"])
        for done, partial in zip(r["completed"], r["survivors"]):  # only survivors are completed, from their prefix
            assert done[: len(partial)] == partial and len(done) - len(partial) <= 8
        if i + 1 < len(res.rounds):
            live = [b for b in r["completed"] if b[-1] != tok.eos_token_id]
            assert all(any(c[: len(p)] == p for p in live) for c in res.rounds[i + 1]["candidates"])
    assert [b.score for b in res.beams] == sorted((b.score for b in res.beams), reverse=True)
    assert res.tokens_generated == new_tokens(res.rounds, eos=tok.eos_token_id)
    assert res.partial_tokens <= sum(2 * len(r["candidates"]) for r in res.rounds)


def test_tokens_with_and_without_rejection(policy):
    model, tok = policy
    prompt = tok("1+2=", add_special_tokens=False)["input_ids"]
    with_r, without = search(model, tok, prompt, reject=True), search(model, tok, prompt, reject=False)
    for res in (with_r, without):
        assert res.tokens_generated == new_tokens(res.rounds, eos=tok.eos_token_id)
    assert without.rounds[0]["survivors"] == without.rounds[0]["completed"]  # scored after completion
    assert with_r.tokens_generated < without.tokens_generated


def test_sequence_classification_reward_model_and_tradeoff(policy):
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    model, tok = policy
    torch.manual_seed(1)
    rm = Qwen2ForSequenceClassification(
        Qwen2Config(
            vocab_size=len(tok),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=32,
            num_labels=1,
            pad_token_id=tok.pad_token_id,
        )
    ).eval()
    scorer = reward_model_scorer(rm, tok.pad_token_id)
    prompt = tok("2+2=", add_special_tokens=False)["input_ids"]
    beams = [[5, 6], [7], [8, 9, 10]]
    with torch.no_grad():
        manual = [float(rm(input_ids=torch.tensor([prompt + b])).logits[0, 0]) for b in beams]
    assert scorer(prompt, beams) == pytest.approx(manual, abs=1e-5)  # padding does not change a score

    prompts = [tok(p, add_special_tokens=False)["input_ids"] for p in ("1+1=", "2+3=")]
    four = tok.convert_tokens_to_ids("4")
    trade = compare_rejection(
        model,
        prompts,
        scorer,
        is_correct=lambda i, ids: four in ids,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        num_beams=4,
        beam_width=2,
        tau=2,
        step_tokens=8,
        max_steps=2,
    )
    assert trade.prompts == 2 and 0 < trade.tokens_with <= trade.tokens_without
    assert trade.accuracy_with in (0.0, 0.5, 1.0) and trade.accuracy_without in (0.0, 0.5, 1.0)
    assert f"{trade.tokens_with} vs {trade.tokens_without} policy tokens" in trade.report_line()


def test_tradeoff_arithmetic_and_bad_input(policy):
    t = RejectionTradeoff(prompts=10, tokens_with=300, tokens_without=1200, accuracy_with=0.45, accuracy_without=0.5)
    assert t.tokens_saved == pytest.approx(0.75) and t.accuracy_kept == pytest.approx(0.9)
    assert t.report_line() == (
        "early rejection on 10 prompts: 300 vs 1200 policy tokens (75.0% saved); accuracy 0.450 vs 0.500 (90.0% kept)"
    )
    assert RejectionTradeoff(1, 0, 0, None, None).tokens_saved == 0.0
    assert RejectionTradeoff(1, 5, 10, 0.0, 0.0).accuracy_kept is None
    model, tok = policy
    with pytest.raises(ValueError, match="tau"):
        partial_beam_search(model, [3], positional_score, eos_token_id=1, pad_token_id=0, tau=0)
