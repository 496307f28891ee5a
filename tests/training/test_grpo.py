"""GRPO math against hand-computed values: advantages, clip-higher surrogate, aggregation, k3 KL."""

from __future__ import annotations

import math

import pytest
import torch

from training.learner.grpo import aggregate, best_of_group, clipped_surrogate, group_advantages, kl_k3


def test_group_advantages_centre_and_scale_per_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0]])  # [N=2, G=4]
    adv = group_advantages(rewards, scale=True, eps=0.0)
    # group 1: mean 0.5, population std 0.5 → ±1; group 2: mean 2, std sqrt(0.5)
    assert adv[0].tolist() == [1.0, -1.0, -1.0, 1.0]
    s = math.sqrt(0.5)
    assert adv[1].tolist() == pytest.approx([1 / s, -1 / s, 0.0, 0.0])


def test_group_advantages_unscaled_and_constant_group():
    rewards = torch.tensor([[3.0, 1.0], [0.7, 0.7]])
    assert group_advantages(rewards, scale=False).tolist() == [[1.0, -1.0], [0.0, 0.0]]
    assert group_advantages(rewards, scale=True)[1].tolist() == [0.0, 0.0]  # no signal, no NaN


def test_best_of_group_reinforces_only_the_best_with_one_vote_per_group():
    rewards = torch.tensor([[1.0, 0.0, 0.2, 1.0],   # tie at the top: the vote is shared
                            [0.98, 0.97, 0.96, 0.9],  # a tiny gap weighs as much as a large one
                            [0.5, 0.5, 0.5, 0.5]])   # nothing to compare: no signal
    adv = best_of_group(rewards)
    assert adv.tolist() == [[0.5, 0.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert (adv >= 0).all()  # nothing pushed down
    # only a passing best sample votes: the best of all-wrong samples is chosen by tie-breakers alone
    passed = torch.tensor([[True, False, False, False], [False, True, True, True], [True, True, True, True]])
    adv = best_of_group(rewards, passed)
    assert adv.tolist() == [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_best_estimator_and_unscaled_advantages_are_refused_together(tmp_path):
    from training.config import GRPOConfig
    from training.config_load import ConfigError

    with pytest.raises(ConfigError, match="scale_advantages applies to advantage_estimator grpo"):
        GRPOConfig(model="tiny", train_data="x.jsonl", output_dir=str(tmp_path), advantage_estimator="best",
                   scale_advantages=False)
    with pytest.raises(ConfigError, match="advantage_estimator must be one of"):
        GRPOConfig(model="tiny", train_data="x.jsonl", output_dir=str(tmp_path), advantage_estimator="rloo")


@pytest.mark.parametrize(
    ("ratio", "adv", "loss", "clipped"),
    [
        (1.5, 1.0, -1.28, True),  # above 1 + clip_high with A > 0: clipped to 1.28
        (1.2, 1.0, -1.2, False),  # inside the band
        (0.5, 1.0, -0.5, False),  # below the band with A > 0: min() keeps the unclipped term
        (0.5, -1.0, 0.8, True),  # below 1 - clip_low with A < 0: clipped to 0.8
        (1.5, -1.0, 1.5, False),  # above the band with A < 0: unclipped (pessimistic) term
        (1.25, 1.0, -1.25, False),  # clip-higher: 1.25 would be clipped at 1.2 by symmetric PPO
    ],
)
def test_clipped_surrogate_hand_values(ratio, adv, loss, clipped):
    old = torch.zeros(1, 1)
    logp = torch.full((1, 1), math.log(ratio))
    out, active = clipped_surrogate(logp, old, torch.tensor([adv]), clip_low=0.2, clip_high=0.28)
    assert out.item() == pytest.approx(loss)
    assert bool(active.item()) is clipped


def test_clipped_surrogate_gradient_vanishes_when_clipped():
    logp = torch.full((1, 2), math.log(1.5), requires_grad=True)
    out, _ = clipped_surrogate(logp, torch.zeros(1, 2), torch.tensor([1.0]))
    out.sum().backward()
    assert logp.grad.abs().sum().item() == 0.0


def test_aggregate_sample_vs_token():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 100.0, 100.0, 100.0]])  # [B=2, T=4]
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])  # 100s are masked (forced tokens / padding)
    assert aggregate(per_token, mask, "sample").item() == pytest.approx((2.0 + 4.0) / 2)
    assert aggregate(per_token, mask, "token").item() == pytest.approx((1 + 2 + 3 + 4) / 4)
    # Global normalisers (what the trainer passes under DDP / minibatches).
    assert aggregate(per_token, mask, "sample", num_samples=4).item() == pytest.approx(6.0 / 4)
    assert aggregate(per_token, mask, "token", num_tokens=8).item() == pytest.approx(10.0 / 8)
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        aggregate(per_token, mask, "group")


def test_masked_tokens_get_no_gradient():
    per_token = torch.ones(1, 3, requires_grad=True)
    aggregate(per_token, torch.tensor([[1, 0, 1]]), "sample").backward()
    assert per_token.grad.tolist() == [[0.5, 0.0, 0.5]]


def test_kl_k3():
    logp = torch.tensor([[0.0, math.log(0.5)]])
    ref = torch.tensor([[0.0, 0.0]])
    kl = kl_k3(logp, ref)
    # d = ref - logp = log 2: exp(d) - d - 1 = 2 - log 2 - 1
    assert kl.tolist()[0] == pytest.approx([0.0, 1.0 - math.log(2.0)])
    assert (kl_k3(ref, logp) >= 0).all()
