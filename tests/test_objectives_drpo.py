"""DRPO's loss: hand computations, edge cases, gradient signs, the authors' formulation, verl and TRL."""

import functools
import math

import pytest

torch = pytest.importorskip("torch")

from rewardsmith.objectives.drpo import CORRECT, NEITHER, WRONG, DRPOConfig, drpo_loss, labels_from_rewards  # noqa: E402


def batch(rows, T=4):
    """rows: (token log-probs, group, label) -> (log_probs, mask, groups, labels) padded to T."""
    lp = torch.zeros(len(rows), T, dtype=torch.float64)
    mask = torch.zeros(len(rows), T, dtype=torch.float64)
    for i, (vals, _, _) in enumerate(rows):
        lp[i, : len(vals)] = torch.tensor(vals, dtype=torch.float64)
        mask[i, : len(vals)] = 1.0
    groups = torch.tensor([g for _, g, _ in rows])
    labels = torch.tensor([lab for _, _, lab in rows])
    return lp.requires_grad_(True), mask, groups, labels


ROWS = [
    ([-1.0, -3.0], 0, CORRECT),  # s = -2, L = 2
    ([-1.0] * 4, 0, CORRECT),  # s = -1, L = 4 (= L_max)
    ([-2.0], 0, WRONG),  # s = -2
    ([-0.5] * 3, 0, WRONG),  # s = -0.5
    ([-1.0], 1, CORRECT),
]  # group 1 has no wrong rollout: dropped, still counted


def hand_objective():
    w0, w1 = math.exp(5) / (math.exp(5) + 1), 1 / (math.exp(5) + 1)  # (1 - 2/4)/0.1 = 5, (1 - 4/4)/0.1 = 0
    lme = math.log((math.exp(-2 / 10) + math.exp(-0.5 / 10)) / 2)
    return (w0 * -2 + w1 * -1 - 10 * lme) / 2  # two groups in the denominator


def test_loss_equals_hand_computation_and_gradient():
    lp, mask, groups, labels = batch(ROWS)
    loss, stats = drpo_loss(lp, lp.detach(), mask, groups, labels)
    assert loss.item() == pytest.approx(-hand_objective(), rel=1e-12)
    assert stats["valid_groups"] == 1 and stats["groups"] == 2 and stats["kl"] == 0.0
    loss.backward()
    w0, w1 = math.exp(5) / (math.exp(5) + 1), 1 / (math.exp(5) + 1)
    p2, p3 = math.exp(-0.2), math.exp(-0.05)
    # d loss / d lp_{i,t} = -(w_i / L_i) / G for correct, +softmax_N(s/τ)_j / L_j / G for wrong
    expected = [-w0 / 2 / 2, -w1 / 4 / 2, p2 / (p2 + p3) / 1 / 2, p3 / (p2 + p3) / 3 / 2, 0.0]
    for i, e in enumerate(expected):
        n = len(ROWS[i][0])
        assert lp.grad[i, :n].tolist() == pytest.approx([e] * n, rel=1e-10, abs=1e-15)
        assert lp.grad[i, n:].abs().sum() == 0  # padding gets nothing


def test_kl_constraint_hand_computation():
    lp, mask, groups, labels = batch(ROWS)
    old = lp.detach() + 0.01 * mask  # old − new = 0.01 on each of the 11 tokens
    cfg = DRPOConfig(delta=1e-4, beta=1e3)
    loss, stats = drpo_loss(lp, old, mask, groups, labels, cfg)
    kl = 0.01
    assert stats["kl"] == pytest.approx(kl) and stats["kl_over_budget"] == 1.0
    assert loss.item() == pytest.approx(-hand_objective() + 1e3 * (kl - 1e-4) * kl, rel=1e-10)
    loss.backward()  # the coefficient is detached: d/dlp of c·mean(old − lp) = −c/11 on each token
    grad_no_kl = torch.autograd.grad(
        drpo_loss(lp, lp.detach() + 0.01 * mask, groups=groups, labels=labels, mask=mask, config=DRPOConfig(beta=0.0))[
            0
        ],
        lp,
    )[0]
    assert (lp.grad - grad_no_kl)[mask.bool()].tolist() == pytest.approx([-1e3 * (kl - 1e-4) / 11] * 11, rel=1e-9)
    low_var = drpo_loss(lp, old, mask, groups, labels, DRPOConfig(kl_type="low_var_kl"))[1]["kl"]
    assert low_var == pytest.approx(math.exp(-0.01) - 1 + 0.01)


def test_edge_cases():
    # all wrong, all right, single rollout: no valid group, loss 0 with a zero gradient
    for rows in (
        [([-1.0], 0, WRONG), ([-2.0], 0, WRONG)],
        [([-1.0], 0, CORRECT)],
        [([-1.0, -1.0], 0, CORRECT), ([-3.0], 0, CORRECT)],
    ):
        lp, mask, groups, labels = batch(rows)
        loss, stats = drpo_loss(lp, lp.detach(), mask, groups, labels)
        loss.backward()
        assert loss.item() == 0.0 and stats["valid_groups"] == 0 and lp.grad.abs().sum() == 0
    # equal lengths: uniform weights over the correct set
    lp, mask, groups, labels = batch([([-1.0, -1.0], 0, CORRECT), ([-3.0, -3.0], 0, CORRECT), ([-2.0, -2.0], 0, WRONG)])
    loss, _ = drpo_loss(lp, lp.detach(), mask, groups, labels)
    assert loss.item() == pytest.approx(-(0.5 * -1 + 0.5 * -3 - 10 * (-2 / 10)))
    # truncated at L_max: weight exp(0) against exp(7.5) for a 1-token answer, never negative
    lp, mask, groups, labels = batch([([-1.0] * 4, 0, CORRECT), ([-1.0], 0, CORRECT), ([-1.0], 0, WRONG)])
    drpo_loss(lp, lp.detach(), mask, groups, labels)[0].backward()
    assert lp.grad[0, 0] < 0 and float(lp.grad[0, 0] / lp.grad[1, 0]) == pytest.approx(math.exp(-7.5) / 4, rel=1e-9)
    # an empty response scores 0; "neither" rewards are ignored
    lp, mask, groups, labels = batch([([], 0, CORRECT), ([-1.0], 0, WRONG), ([-5.0], 0, NEITHER)])
    loss, _ = drpo_loss(lp, lp.detach(), mask, groups, labels)
    assert loss.item() == pytest.approx(-(0.0 - 10 * (-0.1)))
    with pytest.raises(ValueError, match="shape"):
        drpo_loss(lp, lp.detach()[:, :2], mask, groups, labels)
    with pytest.raises(ValueError, match="max_length"):
        DRPOConfig(max_length=0)
    with pytest.raises(ValueError, match="lam"):
        DRPOConfig(lam=0.0)
    with pytest.raises(ValueError, match="longer"):
        lp, mask, groups, labels = batch([([-1.0] * 4, 0, CORRECT), ([-1.0], 0, WRONG)])
        drpo_loss(lp, lp.detach(), mask, groups, labels, DRPOConfig(max_length=3))


def test_labels_from_rewards():
    assert labels_from_rewards(torch.tensor([1.0, 0.0, 0.5, -1.0])).tolist() == [CORRECT, WRONG, NEITHER, NEITHER]


def effective_weights(loss, scores):
    """−d loss / d s_i: how hard each rollout's sequence log-prob is pushed up."""
    return -torch.autograd.grad(loss, scores)[0]


def test_correct_long_rollouts_never_pushed_down_unlike_grpo_with_length_penalty():
    # One group: three short correct answers, one long correct one, one short wrong one (L_max = 10).
    lengths = torch.tensor([1.0, 1.0, 1.0, 10.0, 1.0])
    correct = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    T = 10
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    lp = torch.full((5, T), -1.0, dtype=torch.float64, requires_grad=True)
    loss, _ = drpo_loss(lp, lp.detach(), mask, torch.zeros(5, dtype=torch.long), labels_from_rewards(correct))
    drpo_w = -torch.autograd.grad(loss, lp)[0].sum(-1) * lengths  # per-rollout push on s_i
    # GRPO with a length penalty r = correct − 0.5·L/L_max: advantage = r − mean(r) on the same s_i
    r = correct - 0.5 * lengths / T
    adv = (r - r.mean()) / r.std()
    s = (lp * mask).sum(-1) / lengths
    grpo_w = effective_weights(-(adv * s).mean(), s)
    share = lambda w: float(((w < 0) & (correct == 1)).sum() / (correct == 1).sum())  # noqa: E731
    assert share(drpo_w) == 0.0 and share(grpo_w) == 0.25  # the long correct answer is pushed down by GRPO
    assert drpo_w[3] > 0 and drpo_w[4] < 0


def authors_formulation(lp, old, mask, uid, rewards, delta, beta, tau, lam):
    """The authors' compute_policy_loss_drpo (Optimization-AI/DRPO) re-expressed: equal-size groups via
    sort + view, exp-weights normalised by their sum, the negative term as S / S.detach(), kl_type='kl'."""
    kl = ((old - lp) * mask).sum() / mask.sum()
    s = (lp * mask).sum(1) / mask.sum(1)
    ratio = mask.sum(1) / mask.size(-1)
    order = uid.argsort()
    n_q = uid.unique().numel()
    s, r, ratio = (x[order].view(n_q, -1) for x in (s, rewards, ratio))
    pos, neg = r == 1, r == 0
    keep = pos.any(1) & neg.any(1)
    s, ratio, pos, neg = s[keep], ratio[keep], pos[keep], neg[keep]
    top = (s / tau).masked_fill(~neg, float("-inf")).max(1, keepdim=True).values
    e = torch.exp((s / tau - top.detach()) * neg) * neg
    S = e.sum(1, keepdim=True)
    w = torch.exp((1 - ratio) / lam)
    per_q = (w * (s - tau * S / S.detach()) * pos).sum(1, keepdim=True) / (w * pos).sum(1, keepdim=True)
    return -per_q.sum() / n_q + torch.clamp(beta * (kl - delta), min=0).detach() * kl


def test_gradient_matches_the_authors_formulation():
    g = torch.Generator().manual_seed(0)
    B, T = 12, 7
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    lp = (-torch.rand(B, T, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    old = lp.detach() + 0.02 * torch.randn(B, T, generator=g, dtype=torch.float64)
    uid = torch.tensor([2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    rewards = torch.tensor([1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1], dtype=torch.float64)  # uid 1: all correct
    cfg = DRPOConfig(delta=1e-4, beta=1e3, tau=10.0, lam=0.1)
    ours = torch.autograd.grad(drpo_loss(lp, old, mask, uid, labels_from_rewards(rewards), cfg)[0], lp)[0]
    theirs = torch.autograd.grad(authors_formulation(lp, old, mask, uid, rewards, 1e-4, 1e3, 10.0, 0.1), lp)[0]
    assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def tiny_policy_batch():
    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    prompt = tok("1+2=", add_special_tokens=False)["input_ids"]
    answers = ["3", "1+2=3 chk ok 3", "4", "5 5"]  # correct short, correct long, wrong, wrong
    seqs = [tok(a, add_special_tokens=False)["input_ids"] for a in answers]
    T = max(map(len, seqs))
    ids = torch.full((4, len(prompt) + T), tok.pad_token_id)
    mask = torch.zeros(4, T)
    for i, s in enumerate(seqs):
        ids[i, : len(prompt)] = torch.tensor(prompt)
        ids[i, len(prompt) : len(prompt) + len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return model, ids, len(prompt), mask, torch.tensor([[1.0], [1.0], [0.0], [0.0]])


def token_logps(model, ids, n_prompt):
    logits = model(input_ids=ids).logits[:, n_prompt - 1 : -1]
    return torch.log_softmax(logits.float(), -1).gather(-1, ids[:, n_prompt:, None]).squeeze(-1)


def test_verl_registration_and_an_optimizer_step():
    core = pytest.importorskip("verl.trainer.ppo.core_algos")
    import numpy as np

    import rewardsmith.integrations.verl_plugin as plugin

    loss_fn = core.get_policy_loss_fn("drpo")
    estimator = core.get_adv_estimator_fn("drpo_labels")
    assert plugin.DRPO_LOSS == "drpo"
    model, ids, n_prompt, mask, outcome = tiny_policy_batch()
    token_rewards = torch.zeros_like(mask)
    token_rewards[torch.arange(4), mask.sum(1).long() - 1] = outcome.squeeze(1)  # verl: reward on the last token
    adv, _ = estimator(
        token_level_rewards=token_rewards, response_mask=mask, index=np.array(["q", "q", "q", "q"], dtype=object)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with torch.no_grad():
        old = token_logps(model, ids, n_prompt)
    lp = token_logps(model, ids, n_prompt)
    loss, metrics = loss_fn(
        old_log_prob=old, log_prob=lp, advantages=adv, response_mask=mask.bool(), loss_agg_mode="token-mean"
    )
    direct, _ = drpo_loss(
        lp, old, mask.bool(), torch.zeros(4, dtype=torch.long), labels_from_rewards(outcome.squeeze(1))
    )
    assert loss.item() == pytest.approx(direct.item()) and metrics["actor/drpo_valid_groups"] == 1.0
    before = [p.detach().clone() for p in model.parameters()]
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    with torch.no_grad():
        after = drpo_loss(
            token_logps(model, ids, n_prompt),
            old,
            mask.bool(),
            torch.zeros(4, dtype=torch.long),
            labels_from_rewards(outcome.squeeze(1)),
            DRPOConfig(beta=0.0),
        )[1]["objective"]
    assert after > metrics["actor/drpo_objective"] == pytest.approx(-float(direct))  # the step raised DRPO's objective
    with pytest.raises(ValueError, match="adv_estimator=drpo_labels"):
        loss_fn(old_log_prob=old, log_prob=lp, advantages=torch.zeros_like(mask), response_mask=mask.bool())
    # a row verl padded away (empty response: zero advantages, no tokens) leaves the loss unchanged
    pad = lambda x: torch.cat([x, torch.zeros_like(x[:1])])  # noqa: E731
    padded, _ = loss_fn(
        old_log_prob=pad(old), log_prob=pad(lp.detach()), advantages=pad(adv), response_mask=pad(mask).bool()
    )
    assert padded.item() == pytest.approx(loss.item())


def test_verl_label_codes_round_trip():
    from rewardsmith.integrations.verl_drpo import decode_labels, encode_labels

    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.5, 0.0], [1.0, 0.0]])  # summed: 1, 0, 0.5, 1
    codes = encode_labels(rewards, ["b", "a", "b", "c"])
    assert codes.tolist() == [3 * 1 + 2, 3 * 2 + 1, 3 * 1 + 0, 3 * 3 + 2]
    rows, groups, labels = decode_labels(codes.float()[:, None].expand(4, 3))
    assert rows.all() and groups.tolist() == [1, 2, 1, 3] and labels.tolist() == [CORRECT, WRONG, NEITHER, CORRECT]


@pytest.mark.slow
def test_drpo_trainer_trains_with_trl(tmp_path):
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    from rewardsmith.integrations.trl import reward_funcs
    from rewardsmith.integrations.trl_drpo import DRPOTrainer
    from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer

    torch.set_num_threads(2)
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128), tok, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    data = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str((a + b) % 10)} for a in range(4) for b in range(2)])
    funcs = reward_funcs(
        {"verifier": {"name": "exact", "extract": ["hash", "whole"]}}, processing_class=tok, num_generations=4
    )

    def parity(completion_ids, **_):
        """A 0/1 stand-in for correctness that an untrained policy gets right about half the time."""
        return [float(ids[0] % 2 == 0) if ids else 0.0 for ids in completion_ids]

    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        beta=0.0,
        seed=0,
        reward_weights=[1.0, 0.0],
    )
    make = functools.partial(
        DRPOTrainer, model=model, reward_funcs=[*funcs, parity], args=args, train_dataset=data, processing_class=tok
    )
    trainer = make(correctness_func="parity")
    assert trainer.drpo.max_length == 8
    trainer.train()
    logs = [h for h in trainer.state.log_history if "drpo/objective" in h]
    assert len(logs) == 2 and all(math.isfinite(h["loss"]) for h in logs)
    assert sum(h["drpo/valid_groups"] for h in logs) > 0  # some groups mixed right and wrong, so the step moved
    assert any(not torch.equal(a, p.cpu()) for a, p in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="correctness_func"):
        make(correctness_func="nope")
