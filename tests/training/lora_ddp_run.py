"""LoRA under DDP with held-out evaluation, run by test_lora.py in a subprocess:

    torchrun --nproc_per_node 2 tests/training/lora_ddp_run.py MODEL_DIR DATA HELDOUT OUT_DIR

Writes `OUT_DIR/result-rank{r}.json`: sums of the merged weights and of the adapters (equal on both
ranks when DDP kept the replicas in step), and whether the frozen base stayed as loaded.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from tests.training.e2e_run import config, reward_fns
from training.dist import shutdown
from training.lora import merged_named_parameters
from training.policy import load_policy
from training.train import train


def main() -> None:
    model, data, heldout, out = sys.argv[1:5]
    cfg = dataclasses.replace(config("ddp", model, data, f"{out}/a", lora_rank=8, eval_data=heldout, eval_every=2,
                                     eval_think_budgets="0,16"), lr=1e-2)
    initial = dict(load_policy(model).named_parameters())
    result = train(cfg, reward_fns=reward_fns())
    named = dict(result["policy"].named_parameters())
    frozen = {n.replace(".base_layer.", "."): p for n, p in named.items() if ".lora_" not in n}
    merged = dict(merged_named_parameters(result["policy"]))
    rank = dist.get_rank()
    out_json = {
        "rank": rank,
        "trainable": sum(p.numel() for p in named.values() if p.requires_grad),
        "total": sum(p.numel() for p in frozen.values()),
        "base_frozen": all(torch.equal(p, initial[n]) for n, p in frozen.items()),
        "adapter_sum": sum(p.double().sum().item() for n, p in named.items() if ".lora_" in n),
        "merged_sum": sum(p.double().sum().item() for p in merged.values()),
        "merged_changed": any(not torch.equal(merged[n], initial[n]) for n in merged),
    }
    shutdown()
    Path(out, f"result-rank{rank}.json").write_text(json.dumps(out_json))


if __name__ == "__main__":
    main()
