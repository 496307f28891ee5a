"""One policy update on a fixed batch, for the sharding equivalence test (run in a subprocess).

    python tests/training/update_run.py MODEL DATA OUT micro_batch_size [gradient_checkpointing]
    torchrun --nproc_per_node 2 tests/training/update_run.py MODEL DATA OUT micro_batch_size --fsdp

The global batch is the same 6 samples whatever the world size: rank r takes rows r::world (as
each rank trains on its own groups). Writes OUT/update-{tag}.pt (rank 0): per aggregation mode the
global loss, every parameter's full gradient and the parameters after one SGD step.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

from training import dist
from training.learner import sharding
from training.config import GRPOConfig
from tasks.records import load_records
from training.prompts import PromptEncoder
from training.learner.policy import SequenceLogprobs, load_policy
from training.rollout.samples import Outcome, Sample
from training.learner.update import optimizer_step, prepare


def fixed_samples(processor, data: str) -> list[Sample]:
    rng = random.Random(0)
    records = load_records(data)
    encode = PromptEncoder(processor)
    rows = []
    for i in range(6):  # images and videos, varied lengths, some forced (mask 0) tokens
        n = rng.randint(4, 12)
        ids = [rng.randrange(10, 200) for _ in range(n)]
        mask = [0 if rng.random() < 0.2 else 1 for _ in range(n)]
        s = Sample(group=i, prompt=encode(records[i % len(records)]), response_ids=ids, loss_mask=mask,
                   num_thinking_tokens=0, outcome=Outcome.STOPPED)
        s.advantage = rng.uniform(-1.5, 1.5)
        rows.append(s)
    return rows


def run_update(model_dir: str, data: str, micro: int, fsdp: bool = False, checkpointing: bool = False,
               compute_dtype: str = "float32") -> dict:
    """Per aggregation mode: global loss, full gradients, parameters after one SGD step (all ranks)."""
    from transformers import AutoProcessor

    rank, world, device = dist.init()
    processor = AutoProcessor.from_pretrained(model_dir)
    rows = fixed_samples(processor, data)[rank::world]
    result = {}
    for mode in ("sample", "token"):
        cfg = GRPOConfig(model=model_dir, train_data=data, loss_aggregation=mode, micro_batch_size=micro,
                         distributed="fsdp" if fsdp else "ddp", max_grad_norm=0.0, gradient_checkpointing=checkpointing,
                         logprob_chunk_size=4, compute_dtype=compute_dtype)
        torch.manual_seed(0)
        policy = load_policy(model_dir).train()
        if checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = sharding.wrap(SequenceLogprobs(policy, 1.0, cfg.logprob_chunk_size), cfg, world)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        (mb,), _ = prepare(rows, cfg, 1, model, None, processor.tokenizer.pad_token_id, world, device)
        stats = optimizer_step(mb, cfg, model, optimizer, world, device)
        grads = {n: (p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad).clone()
                 for n, p in model.named_parameters() if p.grad is not None}
        params = dict(sharding.full_named_parameters(model))
        result[mode] = {"loss": dist.mean({"loss": stats["loss"]}, world, device)["loss"],
                        "grads": {n.removeprefix("module.").removeprefix("model."): g for n, g in grads.items()},
                        "params": {n: p.detach().clone() for n, p in params.items()},
                        "micro_batches": len(mb.micros)}
    return result


def main() -> None:
    model_dir, data, out, micro = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    fsdp, checkpointing = "--fsdp" in sys.argv, "--checkpointing" in sys.argv
    result = run_update(model_dir, data, micro, fsdp, checkpointing)
    rank, world = dist.init()[:2]
    if rank == 0:
        tag = f"w{world}-m{micro}{'-fsdp' if fsdp else ''}{'-ckpt' if checkpointing else ''}"
        torch.save(result, out / f"update-{tag}.pt")
    dist.shutdown()


if __name__ == "__main__":
    main()
