"""The policy update of one rollout batch: minibatches (optimizer steps) of micro-batches (forwards).

    rollout batch ──split──▶ num_minibatches minibatches ──split──▶ micro-batches of micro_batch_size rows
                             one optimizer step each               forward + backward each, gradients add up

Every micro-batch's loss is normalised by the counts of its whole minibatch over all ranks, so the
summed gradients equal one forward over the minibatch, whatever micro_batch_size and world size
are (DDP and FSDP2 average gradients over ranks: each rank divides by count / world). All ranks run
the same number of micro-batches (collectives must pair up): a rank with fewer rows runs a
zero-weighted copy of a row.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training import dist
from training.learner import sharding
from training.config import GRPOConfig
from training.learner.grpo import aggregate, clipped_surrogate, kl_k3
from training.learner.policy import Batch, collate, token_logprobs
from training.rollout.samples import Sample


@dataclass
class Micro:
    batch: Batch
    advantages: Tensor  # [B]
    old_logp: Tensor  # [B, L-1] the sampling policy's log-probs (PPO ratio denominator)
    ref_logp: Tensor | None  # [B, L-1] the reference's (KL), when kl_coef > 0
    weight: float  # 1, or 0 for a filler row that only keeps collectives in step


@dataclass
class Minibatch:
    micros: list[Micro]
    num_samples: float  # real rows over all ranks
    num_tokens: float  # trained tokens over all ranks


def split_rows(rows: list[Sample], parts: int) -> list[tuple[list[Sample], float]]:
    """`parts` consecutive slices (sizes differ by at most 1); an empty one becomes a weight-0 filler."""
    out = []
    for idx in torch.tensor_split(torch.arange(len(rows)), parts):
        chunk = [rows[i] for i in idx.tolist()]
        out.append((chunk, 1.0) if chunk else ([rows[0]], 0.0))
    return out


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Old log-probs are those of the policy that sampled, which ran without dropout (rollouts use
    the merged weights): LoRA's `lora_dropout` acts in the loss forward only."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def prepare(kept: list[Sample], cfg: GRPOConfig, step: int, model: nn.Module, reference: nn.Module | None,
            pad_id: int, world: int, device: torch.device) -> tuple[list[Minibatch], dict[str, float]]:
    """Minibatches with the log-probs of the policy that sampled them (before any update), and the
    mean token entropy of that policy on its samples."""
    order = torch.randperm(len(kept), generator=torch.Generator().manual_seed(cfg.seed + step)).tolist()
    rows = [kept[i] for i in order]
    out, ent_sum, ent_n = [], 0.0, 0.0
    for part in split_rows(rows, cfg.num_minibatches):
        mine = part[0] if part[1] else []
        per_micro = cfg.micro_batch_size or max(1, len(mine))
        n_micro = dist.all_max(max(1, math.ceil(len(mine) / per_micro)), world, device)
        micros = []
        for chunk, weight in split_rows(mine or part[0], n_micro):
            weight = weight if mine else 0.0
            batch = collate(chunk, pad_id).to(device)
            with sharding.autocast(cfg, model, device), eval_mode(model):
                old, ent = token_logprobs(model, batch, with_entropy=True)
                ref = token_logprobs(reference, batch) if reference is not None else None
            ent_sum += weight * (ent * batch.loss_mask).sum().item()
            ent_n += weight * batch.loss_mask.sum().item()
            adv = torch.tensor([s.advantage for s in chunk], device=device)
            micros.append(Micro(batch, adv, old, ref, weight))
        n_samples, n_tokens = dist.all_sum(
            [sum(len(m.batch) * m.weight for m in micros), sum(m.batch.loss_mask.sum().item() * m.weight for m in micros)],
            world, device)
        out.append(Minibatch(micros, n_samples, n_tokens))
    return out, {"rollout/entropy": ent_sum / max(ent_n, 1.0)}


def optimizer_step(mb: Minibatch, cfg: GRPOConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                   world: int, device: torch.device) -> dict[str, float]:
    """Forward/backward every micro-batch (gradients reduced over ranks on the last), clip, step."""
    optimizer.zero_grad(set_to_none=True)
    loss_sum, clip_sum, kl_sum, tokens = 0.0, 0.0, 0.0, 0.0
    for i, m in enumerate(mb.micros):
        mask = m.batch.loss_mask  # [B, L-1]: 1 on sampled response tokens, 0 on forced/prompt/pad
        with sharding.grad_sync(model, sync=i == len(mb.micros) - 1), sharding.autocast(cfg, model, device):
            logp = token_logprobs(model, m.batch)  # [B, L-1]
            per_token, clipped = clipped_surrogate(logp, m.old_logp, m.advantages, cfg.clip_low, cfg.clip_high)
            kl = kl_k3(logp, m.ref_logp) if m.ref_logp is not None else torch.zeros_like(logp)  # [B, L-1]
            loss = m.weight * aggregate(per_token + cfg.kl_coef * kl, mask, cfg.loss_aggregation,
                                        num_samples=mb.num_samples / world, num_tokens=mb.num_tokens / world)
            loss.backward()
        loss_sum += loss.item()
        clip_sum += m.weight * (clipped.float() * mask).sum().item()
        kl_sum += m.weight * (kl.detach() * mask).sum().item()
        tokens += m.weight * mask.sum().item()
    norm = sharding.clip_grad_norm(model, cfg.max_grad_norm)
    optimizer.step()
    return {"loss": loss_sum, "clip_frac": clip_sum / max(tokens, 1.0), "kl": kl_sum / max(tokens, 1.0),
            "grad_norm": norm}
