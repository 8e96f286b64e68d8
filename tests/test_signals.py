"""The signals stage: log-probs and entropies from a hand-set tiny LM (tests/_tiny_lm.py) or the records,
each computed once per batch, and the components that read them, on hand-computed examples."""

import math

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch

from _tiny_lm import (
    ID,
    REF_TABLE,
    TABLE,
    build_model,
    build_tokenizer,
    entropy,
    logprob,
    save,
    seq_logprobs,
)
from rewardsmith import load_spec
from rewardsmith.batch import Batch
from rewardsmith.lm_signals import CausalLMScorer
from rewardsmith.registry import SpecError
from rewardsmith.shaping.process import masked_whiten, prime_advantages
from rewardsmith.signals import SignalError, Signals


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    return save(root / "policy"), save(root / "ref", REF_TABLE)


@pytest.fixture(scope="module")
def scorer():
    return CausalLMScorer(build_model(), build_tokenizer(), batch_size=2)


def spec(paths, *shaping, **extra):
    return {
        "shaping": list(shaping),
        "length_unit": "words",
        "signals": {"model": paths[0], "ref_model": paths[1]},
        **extra,
    }


# ---------------------------------------------------------------- log-prob arithmetic
def test_log_probs_and_entropies_match_the_table_and_a_manual_forward_pass(scorer):
    (lp, ent), (alone, _) = scorer.score([("a b", "c ok"), ("", "a b c")], entropies=True)
    assert lp.tolist() == pytest.approx(seq_logprobs(TABLE, ["a", "b"], ["c", "ok"]), abs=1e-5)
    assert ent.tolist() == pytest.approx([entropy(TABLE, "b"), entropy(TABLE, "c")], abs=1e-5)
    assert alone.tolist() == pytest.approx(seq_logprobs(TABLE, [], ["a", "b", "c"]), abs=1e-5)  # after <bos>
    with torch.no_grad():  # the same numbers from the model's own forward pass
        ids = torch.tensor([[ID[t] for t in ["a", "b", "c", "ok"]]])
        manual = torch.log_softmax(scorer.model(input_ids=ids).logits[0], -1)
    assert lp.tolist() == pytest.approx([manual[1, ID["c"]].item(), manual[2, ID["ok"]].item()], abs=1e-6)


def test_batching_and_padding_do_not_change_values():
    pairs = [("a", "b c ok"), ("c", "a"), ("a b c", ""), ("", "ok"), ("b", "c c c c c")]
    one = CausalLMScorer(build_model(), build_tokenizer(), batch_size=1).score(pairs, entropies=True)
    many = CausalLMScorer(build_model(), build_tokenizer(), batch_size=5).score(pairs, entropies=True)
    for (a, ea), (b, eb) in zip(one, many):
        assert np.allclose(a, b, atol=1e-6) and np.allclose(ea, eb, atol=1e-6)
    assert len(one[2][0]) == 0  # an empty continuation has no tokens


def test_pipeline_loads_the_local_model_and_dtype_is_honoured(paths):
    s = load_spec(
        spec(paths, {"name": "implicit_prm"}, signals={"model": paths[0], "ref_model": paths[1], "dtype": "bfloat16"})
    )
    out = s.score([{"prompt_id": "q", "prompt": "a", "completion": "b c"}])
    exact = [
        0.05 * (x - y)
        for x, y in zip(seq_logprobs(TABLE, ["a"], ["b", "c"]), seq_logprobs(REF_TABLE, ["a"], ["b", "c"]))
    ]
    assert out.dense.rewards[0][0] == pytest.approx(exact[0], abs=2e-3)  # bfloat16 weights: close, not exact
    assert next(iter(s.scorers.values())).model.dtype == torch.bfloat16


def test_missing_signals_and_bad_values_are_clear_errors(paths):
    with pytest.raises(SignalError, match="no signals.ref_model"):
        load_spec({"shaping": ["implicit_prm"], "length_unit": "words"}).score(
            [{"prompt_id": "q", "completion": "b", "meta": {"token_logprobs": [-1.0]}}]
        )
    with pytest.raises(SignalError, match="non-positive"):
        Signals(Batch.from_records([{"prompt_id": "q", "completion": "b", "meta": {"token_logprobs": [0.5]}}])).get(
            "token_logprobs"
        )
    for bad in (["x"], [[-1.0], [-2.0, -3.0]], [float("nan")], {"a": 1}):
        with pytest.raises(SignalError, match="flat list"):
            Signals(Batch.from_records([{"prompt_id": "q", "completion": "b", "meta": {"entropies": bad}}])).get(
                "entropies"
            )
    with pytest.raises(SignalError, match="token log-probs and 2 reference"):
        load_spec({"shaping": ["implicit_prm"], "length_unit": "words"}).score(
            [
                {
                    "prompt_id": "q",
                    "completion": "b",
                    "meta": {"token_logprobs": [-1.0], "ref_token_logprobs": [-1.0, -2.0]},
                }
            ]
        )
    with pytest.raises(SpecError, match="signals.device"):
        load_spec({"shaping": ["sar"], "signals": {"model": paths[0], "device": 3}})


def test_records_signals_are_used_without_a_model():
    recs = [
        {
            "prompt_id": "q",
            "completion": "x y",
            "meta": {"token_logprobs": [-1.0, -2.0], "ref_token_logprobs": [-1.5, -1.0]},
        }
    ]
    out = load_spec({"shaping": [{"name": "implicit_prm", "beta": 0.1}], "length_unit": "words"}).score(recs)
    assert out.components["implicit_prm"].tolist() == pytest.approx([0.1 * (0.5 - 1.0)])
    assert out.to_records(recs)[0]["dense"]["rewards"] == pytest.approx([0.05, -0.1])


# ---------------------------------------------------------------- once per batch
class Counting:
    """Wraps the real scorer and records every pair it is asked to score."""

    def __init__(self, inner):
        self.inner, self.calls, self.pairs = inner, 0, []

    def score(self, pairs, entropies):
        self.calls += 1
        self.pairs.extend(pairs)
        return self.inner.score(pairs, entropies)


def test_each_signal_is_computed_once_per_batch_when_three_components_need_it(paths, scorer):
    pipe = load_spec(
        spec(paths, {"name": "sar"}, {"name": "sar", "coef": 0.5}, {"name": "pear"}, {"name": "implicit_prm"})
    )
    policy, ref = Counting(scorer), Counting(CausalLMScorer(build_model(REF_TABLE), build_tokenizer()))
    pipe.scorers.update({paths[0]: policy, paths[1]: ref})
    recs = [{"prompt_id": "q", "prompt": "a", "completion": c} for c in ("b c", "c ok", "b")]
    out = pipe.score(recs)
    completions = [("a", r["completion"]) for r in recs]
    # (prompt, completion) is needed by implicit_prm (log-probs), sar, sar_2 and pear (entropies): scored once each
    assert all(policy.pairs.count(p) == 1 for p in completions)
    assert len(policy.pairs) == len(set(policy.pairs))  # no pair is ever scored twice in a batch
    assert ref.calls == 1 and ref.pairs == completions
    assert out.components["sar_2"] == pytest.approx(0.5 * out.components["sar"])
    pipe.score(recs)  # a new batch computes again, once
    assert len(policy.pairs) == 2 * len(set(policy.pairs))


# ---------------------------------------------------------------- components on hand-built examples
def ppl(lps):
    return math.exp(-sum(lps) / len(lps))


def test_sar_hand_computed(paths):
    out = load_spec(spec(paths, "sar")).score(
        [{"prompt_id": "q", "prompt": "a", "completion": "b c"}, {"prompt_id": "q", "prompt": "a", "completion": ""}]
    )
    given = ppl(seq_logprobs(TABLE, ["a"], ["b", "c"]))
    alone = ppl(seq_logprobs(TABLE, [], ["b", "c"]))
    assert out.components["sar"][0] == pytest.approx(max((alone - given) / (alone + 1e-9), -1.0), abs=1e-5)
    assert out.components["sar"][0] > 0  # "b" is likelier after "a" than after <bos>
    assert out.components["sar"][1] == 0.0  # an empty answer earns nothing


def test_sar_is_floored_at_minus_one():
    from rewardsmith.shaping.self_signals import self_aligned_reward

    assert self_aligned_reward(2.0, 10.0) == -1.0 and self_aligned_reward(4.0, 1.0) == pytest.approx(0.75)


def test_flr_hand_computed(paths):
    flr = {"name": "flr", "positive": ["ok", "a b"], "negative": ["c"], "follow_up_prefix": " "}
    out = load_spec(spec(paths, flr)).score([{"prompt_id": "q", "prompt": "a", "completion": "b </think>"}])
    pos = [np.mean(seq_logprobs(TABLE, ["</think>"], f.split())) for f in ("ok", "a b")]
    neg = [logprob(TABLE, "</think>", "c")]
    assert out.components["flr"][0] == pytest.approx(np.mean(pos) - np.mean(neg), abs=1e-5)


def test_pear_hand_computed_from_the_model(paths):
    pear = {"name": "pear", "think_coef": 0.5, "answer_coef": 0.25}
    out = load_spec(spec(paths, pear)).score(
        [
            {"prompt_id": "q", "prompt": "b", "completion": "a </think> ok"},
            {"prompt_id": "q", "prompt": "b", "completion": "a c"},
        ]
    )
    think = np.mean([entropy(TABLE, "b"), entropy(TABLE, "a")])
    answer = entropy(TABLE, "</think>")
    assert out.components["pear"][0] == pytest.approx(-(0.5 * think + 0.25 * answer), abs=1e-5)
    assert out.components["pear"][1] == pytest.approx(
        -0.5 * np.mean([entropy(TABLE, "b"), entropy(TABLE, "a")]), abs=1e-5
    )  # all thinking


def test_pear_from_records_entropies():
    recs = [
        {
            "prompt_id": "q",
            "completion": "t t </think> x",
            "meta": {"entropies": [2.0, 1.0, 0.5, 0.3], "token_ids": [5, 5, 9, 7]},
        },
        {"prompt_id": "q", "completion": "t x", "meta": {"entropies": [1.0, 3.0], "think_tokens": 1}},
    ]
    out = load_spec(
        {
            "shaping": [{"name": "pear", "think_coef": 1.0, "answer_coef": 1.0, "think_end_id": 9}],
            "length_unit": "words",
        }
    ).score(recs)
    assert out.components["pear"].tolist() == pytest.approx([-(np.mean([2.0, 1.0, 0.5]) + 0.3), -(1.0 + 3.0)])
    with pytest.raises(SignalError, match="where thinking ends"):
        load_spec({"shaping": ["pear"], "length_unit": "words"}).score(recs[:1])


def test_implicit_prm_rewards_and_prime_advantages():
    lp = [[-1.0, -0.5], [-2.0], [-0.2, -0.2, -0.2]]
    ref = [[-1.2, -0.4], [-1.0], [-0.3, -0.1, -0.3]]
    recs = [
        {"prompt_id": "q", "completion": c, "answer": "w", "meta": {"token_logprobs": a, "ref_token_logprobs": b}}
        for c, a, b in zip(["w", "v", "v v v"], lp, ref)
    ]  # exact verifier: record 0 correct, the others wrong
    out = load_spec(
        {
            "verifier": {"name": "exact", "extract": ["whole"]},
            "length_unit": "words",
            "shaping": [{"name": "implicit_prm", "beta": 0.5}],
        }
    ).score(recs)
    r = [0.5 * (np.array(a) - np.array(b)) for a, b in zip(lp, ref)]
    assert out.components["implicit_prm"].tolist() == pytest.approx([x.sum() for x in r])
    # hand: leave-one-out per source over the group of 3, summed with weights 5, reverse cumsum, batch whitening
    means = [x.mean() for x in r]
    proc = [x * 3 / 2 - sum(means) / 2 for x in r]
    acc = [1.0, 0.0, 0.0]
    outc = [a * 3 / 2 - sum(acc) / 2 for a in acc]
    tok = [5 * p + 5 * np.eye(1, len(p), len(p) - 1).ravel() * o for p, o in zip(proc, outc)]
    ret = [np.cumsum(t[::-1])[::-1] for t in tok]
    flat = np.concatenate(ret)
    want = [(x - flat.mean()) / np.sqrt(flat.var(ddof=1) + 1e-8) for x in ret]
    got = out.dense.advantages
    for g, w in zip(got, want):
        assert g == pytest.approx(w.tolist(), abs=1e-9)
    # the dense rewards sum to each record's reward (the outcome rides on the last token)
    assert [sum(d) for d in out.dense.rewards] == pytest.approx(out.total.tolist())


def test_prime_advantages_match_verl_recipe_arithmetic():
    """Cross-check against verl: its masked_whiten, and PRIME's masked_rloo loop re-implemented over a padded tensor."""
    vf = pytest.importorskip("verl.utils.torch_functional")
    rng = np.random.default_rng(0)
    lengths, n = [3, 1, 4, 2], 2  # two groups of two, contiguous as in verl
    process = [rng.normal(size=k) for k in lengths]
    acc = np.array([1.0, 0.0, 1.0, 1.0])
    ours = prime_advantages(process, acc, np.array([0, 0, 1, 1]), 5.0, 5.0)
    width = max(lengths)
    mask = torch.zeros(4, width, dtype=torch.bool)
    scores = torch.zeros(4, width, dtype=torch.float64)
    last = torch.zeros(4, width, dtype=torch.float64)
    last_mask = torch.zeros(4, width, dtype=torch.bool)
    for i, p in enumerate(process):
        mask[i, : len(p)] = True
        scores[i, : len(p)] = torch.tensor(p)
        last[i, len(p) - 1], last_mask[i, len(p) - 1] = acc[i], True

    def masked_rloo(t, m):
        t = t.clone()
        t[~m] = 0
        for s in range(0, t.shape[0], n):
            mean = torch.stack([t[k][m[k]].mean() for k in range(s, s + n)])
            base = mean.sum() / (n - 1)
            t[s : s + n][m[s : s + n]] = t[s : s + n][m[s : s + n]] * (n / (n - 1)) - base
        return t

    final = masked_rloo(scores, mask) * 5 + masked_rloo(last, last_mask) * 5
    returns = (final * mask).flip(-1).cumsum(-1).flip(-1)
    theirs = vf.masked_whiten(returns, mask)
    for i, k in enumerate(lengths):
        assert ours[i].tolist() == pytest.approx(theirs[i, :k].tolist(), abs=1e-6)  # verl whitens in float32
    assert masked_whiten([np.array([1.0])]) == [np.array([0.0])]  # a single token: nothing to whiten against


def test_implicit_prm_single_rollout_group_has_zero_leave_one_out():
    adv = prime_advantages([np.array([0.3, -0.1])], np.array([1.0]), np.array([0]), 5.0, 5.0)
    assert adv[0].tolist() == [0.0, 0.0]


def step_recs(steps, correct):
    return [
        {"prompt_id": "q", "completion": "yes" if c else "no", "answer": "yes", "meta": {"step_rewards": s}}
        for s, c in zip(steps, correct)
    ]


def step_spec(shaper):
    return {"verifier": {"name": "exact", "extract": ["whole"]}, "length_unit": "words", "shaping": [shaper]}


def test_prm_clip_delta_renorm_hand_computed():
    steps = [[0.9, 0.2, 0.6], [0.3]]
    recs = step_recs(steps, [True, False])
    clip = load_spec(step_spec({"name": "prm_clip", "eta": 0.5, "alpha": 2.0})).score(recs)
    assert clip.components["prm_clip"].tolist() == pytest.approx([2 * (0 - 0.3 + 0), 2 * -0.2])
    assert clip.dense.unit == "step" and clip.dense.rewards[0][:2] == pytest.approx([0.0, -0.6])
    assert clip.dense.rewards[0][2] == pytest.approx(
        clip.total[0] - (0.0 - 0.6)
    )  # the rest of the reward on the last step
    delta = load_spec(step_spec({"name": "prm_delta"})).score(recs)
    assert delta.components["prm_delta"].tolist() == pytest.approx([0.9 - 0.6, 0.0])  # telescopes to r_1 − r_K
    both = load_spec(step_spec({"name": "prm_delta", "clip_eta": 0.5})).score(recs)
    assert both.components["prm_delta"].tolist() == pytest.approx(
        [0.0 - 0.0, 0.0]
    )  # clipped [0, −0.3, 0]: r_1 − r_K = 0
    renorm = load_spec(step_spec({"name": "renorm"})).score(recs)
    assert renorm.dense.rewards[1] == pytest.approx([0.3 - 1.0 + 0.0])  # failed: r_p − 1, and the wrong outcome is 0
    assert renorm.components["renorm"].tolist() == pytest.approx([0.9 + 0.2 + 0.6, 0.3 - 1.0])


def test_step_farming_cannot_raise_the_clipped_or_delta_return():
    honest = step_recs([[0.8, 0.9]], [True])
    farmed = step_recs([[0.8, 0.9] + [0.95] * 20], [True])
    for shaper in ({"name": "prm_clip", "eta": 0.5}, {"name": "prm_delta"}):
        a, b = (load_spec(step_spec(shaper)).score(r).total[0] for r in (honest, farmed))
        assert b <= a + 1e-12, shaper


def test_step_rewards_missing_is_a_clear_error():
    with pytest.raises(SignalError, match="meta.step_rewards"):
        load_spec(step_spec({"name": "renorm"})).score([{"prompt_id": "q", "completion": "x", "answer": "x"}])


def test_igpo_hand_computed_single_and_multi_turn(paths):
    igpo = {"name": "igpo", "answer_prefix": " "}
    multi = [{"role": "assistant", "content": "b"}, {"role": "assistant", "content": "a"}]
    recs = [
        {"prompt_id": "q", "prompt": "a ", "completion": "b", "answer": "c"},
        {"prompt_id": "q", "prompt": "a ", "completion": multi, "answer": "c"},
        {"prompt_id": "q", "prompt": "a ", "completion": "b"},
    ]  # no reference: no information gain
    out = load_spec(spec(paths, igpo)).score(recs)
    b0, after_b, after_a = logprob(TABLE, "a", "c"), logprob(TABLE, "b", "c"), logprob(TABLE, "a", "c")
    assert out.components["igpo"].tolist() == pytest.approx([after_b - b0, after_a - b0, 0.0], abs=1e-5)
    assert out.dense.unit == "turn" and len(out.dense.rewards[1]) == 2
    assert out.dense.rewards[1][0] == pytest.approx(after_b - b0, abs=1e-5)
    # advantages: z-scores over the group's turn and outcome rewards (outcome 0 here), returns with γ = 1
    pool = np.array([after_b - b0, 0.0, after_b - b0, after_a - after_b, 0.0, 0.0, 0.0])
    z = (pool - pool.mean()) / (pool.std() + 1e-6)
    assert out.dense.advantages[1] == pytest.approx([z[2] + z[3] + z[4], z[3] + z[4]], abs=1e-5)


def test_at_most_one_dense_component():
    with pytest.raises(SpecError, match="at most one"):
        load_spec({"shaping": ["renorm", {"name": "prm_clip", "eta": 0.5}]})


def test_left_padding_matches_unpadded_forward_passes_with_attention():
    """A random Qwen2 (attention at work, unlike the bigram model): batched, padded values equal each
    pair's own forward pass."""
    from rewardsmith.lab.model import ModelConfig
    from rewardsmith.lab.model import build_model as build_qwen
    from rewardsmith.lab.model import build_tokenizer as build_lab_tokenizer
    from rewardsmith.lm_signals import token_signals

    model = build_qwen(
        ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), build_lab_tokenizer(), seed=0
    )
    pairs = [([3, 4, 5], [6, 7, 8, 9]), ([4], [5]), ([5, 6, 7, 8, 9, 10, 11], [12, 13]), ([3, 3], [])]
    batched = token_signals(model, pairs, pad_id=0, batch_size=4, entropies=True)
    for (c, y), (lp, ent) in zip(pairs, batched):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([c + y])).logits[0].float(), -1)
        rows = range(len(c) - 1, len(c) - 1 + len(y))
        assert lp.tolist() == pytest.approx([logp[r, t].item() for r, t in zip(rows, y)], abs=1e-5)
        assert ent.tolist() == pytest.approx([-(logp[r].exp() * logp[r]).sum().item() for r in rows], abs=1e-5)


def test_igpo_trajectory_history_includes_tool_results(paths):
    """After turn t the history runs to the next assistant turn, so a search turn's gain includes
    its result: user "a"; assistant "b" calling a tool; the tool answers "a"; assistant "b". The
    bigram model scores "c" after the last token: histories end a, a (the tool's), b."""
    calc = {"type": "function", "function": {"name": "calc", "arguments": "{}"}}
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "tool_calls": [calc]},
        {"role": "tool", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    out = load_spec(spec(paths, {"name": "igpo", "answer_prefix": " "})).score(
        [{"prompt_id": "q", "messages": msgs, "answer": "c"}]
    )
    lp_a, lp_b = logprob(TABLE, "a", "c"), logprob(TABLE, "b", "c")
    assert out.dense.unit == "turn"
    assert out.dense.rewards[0][0] == pytest.approx(0.0, abs=1e-5)  # the tool gave "a" back: no gain
    assert out.components["igpo"][0] == pytest.approx(lp_b - lp_a, abs=1e-5)
