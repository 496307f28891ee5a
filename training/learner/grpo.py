"""GRPO's math on tensors: group advantages, the clipped surrogate, loss aggregation, k3 KL.

Pure functions with no model or data in sight, so each is unit-tested against hand-computed values.
Shapes: N prompts x G samples per group; B = rows in a (mini)batch, T = response tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(rewards: Tensor, scale: bool = True, eps: float = 1e-6) -> Tensor:
    """rewards [N, G] → advantages [N, G]: each reward minus its group mean, divided by the group
    std when `scale` (GRPO). A group whose rewards all equal gets zeros: no signal, no update."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)  # [N, G]
    if not scale:
        return centred
    # Population std (unbiased=False) as in the GRPO paper's normalisation of the observed group.
    return centred / (rewards.std(dim=1, unbiased=False, keepdim=True) + eps)  # [N, G]


def best_of_group(rewards: Tensor, passed: Tensor | None = None) -> Tensor:
    """rewards [N, G] → advantages [N, G] that reinforce only each group's best sample (RAFT's
    reward-ranked fine-tuning; verl's `grpo_passk` gives the best one the gap to the second): weight 1,
    shared among tied best samples, and 0 for the rest. A group votes only when its best sample
    `passed` [N, G] (bool; None = every sample counts) and its rewards differ: the best of all-wrong
    samples would be chosen by the tie-breaking terms alone (a length term), reinforcing a wrong answer
    at full weight (measured on running sums: training accuracy 0.9 -> 0.0 in 30 steps at lr 5e-4).
    Every voting group casts one equal vote whatever its reward scale, and nothing is pushed down:
    where groups ask for opposite things (short thoughts under a tight budget, long ones under a loose
    one), their pushes on what the groups share cancel, as in SFT on the winners. On running sums it
    did not help (docs/training.md, "Giving every budget a vote"): about 8 votes a step at lr 5e-4 and
    1e-3 still lost the answers."""
    top = rewards.max(dim=1, keepdim=True).values  # [N, 1]
    best = rewards == top  # [N, G]
    votes = top > rewards.min(dim=1, keepdim=True).values  # [N, 1]
    if passed is not None:
        votes = votes & (best & passed).any(dim=1, keepdim=True)  # [N, 1]
        best = best & passed  # [N, G]
    return best.float() / best.sum(dim=1, keepdim=True).clamp(min=1) * votes  # [N, G]


def advantages_of(rewards: Tensor, estimator: str, scale: bool = True, passed: Tensor | None = None) -> Tensor:
    """rewards [N, G] → advantages [N, G] by `GRPOConfig.advantage_estimator`: "grpo" (group-centred,
    divided by the group std when `scale`) or "best" (`best_of_group`, with `passed` [N, G])."""
    if estimator == "best":
        return best_of_group(rewards, passed)
    return group_advantages(rewards, scale)


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_low: float = 0.2, clip_high: float = 0.28
) -> tuple[Tensor, Tensor]:
    """Per-token PPO loss with clip-higher, and where the clip was the active term.

    logp, old_logp [B, T]; advantages [B] (one per sample, broadcast over its tokens).
    Returns (loss [B, T], clipped [B, T] bool). The ratio is clipped to [1 - clip_low, 1 + clip_high]:
    a higher upper bound lets low-probability tokens with positive advantage grow faster, which
    keeps entropy from collapsing (DAPO's clip-higher, used by the GLM-4.1V report).
    """
    ratio = torch.exp(logp - old_logp)  # [B, T]
    adv = advantages.unsqueeze(1)  # [B, 1]
    unclipped = ratio * adv  # [B, T]
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv  # [B, T]
    loss = -torch.minimum(unclipped, clipped)  # [B, T]
    active = ((adv > 0) & (ratio > 1.0 + clip_high)) | ((adv < 0) & (ratio < 1.0 - clip_low))  # [B, T]
    return loss, active


def aggregate(
    per_token: Tensor, mask: Tensor, mode: str = "sample",
    num_samples: float | None = None, num_tokens: float | None = None,
) -> Tensor:
    """Reduce a per-token loss [B, T] over the tokens where mask [B, T] is 1.

    sample: mean over each sample's tokens, then sum over samples / num_samples (the report's default:
        every sample weighs the same, however long).
    token: sum over all tokens / num_tokens (long samples weigh more).
    num_samples / num_tokens default to this batch's counts; the trainer passes the counts of the
    whole minibatch across ranks so that DDP's gradient averaging gives the exact global mean.
    """
    mask = mask.to(per_token.dtype)
    if mode == "sample":
        per_sample = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # [B]
        return per_sample.sum() / (per_token.shape[0] if num_samples is None else num_samples)
    if mode == "token":
        return (per_token * mask).sum() / (mask.sum().clamp(min=1.0) if num_tokens is None else num_tokens)
    raise ValueError(f"unknown loss aggregation {mode!r}; use 'sample' or 'token'")


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(policy || reference) [B, T]: exp(d) - d - 1 with d = ref - logp;
    non-negative and unbiased for samples drawn from the policy."""
    delta = ref_logp - logp  # [B, T]
    return torch.exp(delta) - delta - 1.0
