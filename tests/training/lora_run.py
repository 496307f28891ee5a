"""LoRA runs for test_lora.py, in a subprocess (keeps torch.distributed and vLLM out of pytest):

    torchrun --nproc_per_node 2 tests/training/lora_run.py ddp MODEL_DIR DATA HELDOUT OUT_DIR
    python tests/training/lora_run.py vllm MODEL_DIR DATA HELDOUT OUT_DIR

Writes `OUT_DIR/result-rank{r}.json`: sums of the merged weights and of the adapters (equal on both
ranks when DDP kept the replicas in step), whether the frozen base stayed as loaded, and (vllm) how
far vLLM's log-probs are from the trained LoRA policy's and from the base model's.
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
from training.learner.lora import merged_named_parameters
from training.learner.policy import load_policy
from training.train import train


def vllm_mismatch(engine, policy: torch.nn.Module, model: str, data: str) -> dict[str, float]:
    """Mean |vLLM log-prob - trainer log-prob| on tokens vLLM samples now, against the trained LoRA
    policy and against the same policy with its adapters zeroed (the base): only a merged push makes
    the first one small."""
    from transformers import AutoProcessor

    from tasks.records import load_records

    from training.prompts import PromptEncoder
    from training.learner.policy import SequenceLogprobs, collate, token_logprobs
    from training.rollout.samples import Outcome, Sample

    processor = AutoProcessor.from_pretrained(model)
    prompts = [PromptEncoder(processor)(r) for r in load_records(data)[:3]]
    groups = engine.generate(prompts, 2, temperature=1.0, top_p=1.0, max_tokens=24, budget=None, seeds=[11, 13, 17])
    rows = [Sample(group=0, prompt=p, response_ids=c.token_ids, loss_mask=[1] * len(c.token_ids),
                   num_thinking_tokens=0, outcome=Outcome.STOPPED, engine_logprobs=c.engine_logprobs)
            for p, g in zip(prompts, groups) for c in g]
    batch = collate(rows, processor.tokenizer.pad_token_id)
    out = {}
    with torch.no_grad():
        for name in ("trained", "base"):
            if name == "base":
                for n, p in policy.named_parameters():
                    if ".lora_B." in n:
                        p.zero_()
            logp = token_logprobs(SequenceLogprobs(policy.eval()), batch)  # [B, L-1]
            out[f"mismatch_{name}"] = ((logp - batch.engine_logprobs).abs() * batch.loss_mask).sum().item() / \
                batch.loss_mask.sum().item()
    return out


def main() -> None:
    kind, model, data, heldout, out = sys.argv[1:6]
    cfg = dataclasses.replace(config("ddp" if kind == "ddp" else "vllm", model, data, f"{out}/a", lora_rank=8,
                                     eval_data=heldout, eval_every=2, eval_think_budgets="0,16"), lr=1e-2)
    initial = dict(load_policy(model).named_parameters())
    result = train(cfg, reward_fns=reward_fns())
    named = dict(result["policy"].named_parameters())
    frozen = {n.replace(".base_layer.", "."): p for n, p in named.items() if ".lora_" not in n}
    merged = dict(merged_named_parameters(result["policy"]))
    rank = dist.get_rank() if kind == "ddp" else 0
    out_json = {
        "rank": rank,
        "trainable": sum(p.numel() for p in named.values() if p.requires_grad),
        "total": sum(p.numel() for p in frozen.values()),
        "base_frozen": all(torch.equal(p, initial[n]) for n, p in frozen.items()),
        "adapter_sum": sum(p.double().sum().item() for n, p in named.items() if ".lora_" in n),
        "merged_sum": sum(p.double().sum().item() for p in merged.values()),
        "merged_changed": any(not torch.equal(merged[n], initial[n]) for n in merged),
    }
    if kind == "vllm":
        out_json.update(vllm_mismatch(result["engine"], result["policy"], model, data))
        out_json["history"] = result["history"]
    shutdown()
    Path(out, f"result-rank{rank}.json").write_text(json.dumps(out_json))


if __name__ == "__main__":
    main()
