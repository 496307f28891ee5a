"""Run by the end-to-end tests in a subprocess (keeps vLLM and torch.distributed out of pytest).

    python tests/training/e2e_run.py ENGINE MODEL_DIR DATA OUT_DIR      (ENGINE: vllm or hf)
    torchrun --nproc_per_node 2 tests/training/e2e_run.py ddp MODEL_DIR DATA OUT_DIR
    torchrun --nproc_per_node 2 tests/training/e2e_run.py fsdp MODEL_DIR DATA OUT_DIR   (+ micro-batches, DCP resume)
    torchrun --nproc_per_node 2 tests/training/e2e_run.py vllm-fsdp MODEL_DIR DATA OUT_DIR   (a vLLM engine per rank)
    torchrun --nproc_per_node 2 tests/training/e2e_run.py vllm-tp MODEL_DIR DATA OUT_DIR   (one TP=2 engine over both ranks)

Writes `OUT_DIR/result-rank{r}.json` per process with what the tests assert on.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from training.config import GRPOConfig
from scoring.rewards import build_reward_fns
from training.train import train

BUDGET = 16


def config(engine: str, model: str, data: str, out: str, **kw) -> GRPOConfig:
    return GRPOConfig(model=model, train_data=data, output_dir=out, steps=4, prompts_per_step=4, group_size=4,
                      num_minibatches=2, max_new_tokens=48, rollout_think_budget=BUDGET, answer_reserve=8, lr=1e-3,
                      rollout_engine={"ddp": "hf", "fsdp": "hf", "vllm-fsdp": "vllm"}.get(engine, engine),
                      save_every=2, progress_bar=False,
                      **({"distributed": "fsdp", "micro_batch_size": 1, "gradient_checkpointing": True}
                         if engine.endswith("fsdp") else {}), **kw)


def reward_fns():
    # The real format gate and style terms, with a verifier that gives partial credit by answer
    # length: a barely trained model then gets reward variance within groups, so updates happen.
    lenient = lambda pred, ref: 1.0 / (1.0 + len(pred))  # noqa: E731
    return build_reward_fns(verifiers={d: lenient for d in ("counting", "numeric", "exact")})


def timeless(history: list[dict]) -> list[dict]:
    """History without wall-clock metrics (time/step_s), which no rerun reproduces."""
    return [{k: v for k, v in h.items() if not k.startswith("time/")} for h in history]


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def engine_checks(engine, policy, initial: dict[str, torch.Tensor], processor, data: str) -> dict:
    """Weights really reached vLLM: un-repacked tensors equal the policy's (in bf16), and vLLM's
    sampled-token log-probs agree with the trained policy far better than with the initial one."""
    from tasks.records import load_records
    from training.prompts import PromptEncoder
    from training.learner.policy import SequenceLogprobs, collate, token_logprobs
    from training.rollout.samples import Outcome, Sample

    inner = lambda m: m.language_model  # noqa: E731
    got = engine.llm.apply_model(lambda m: {"embed": inner(m).model.embed_tokens.weight.detach().float().clone(),
                                            "lm_head": inner(m).lm_head.weight.detach().float().clone()})[0]
    named = dict(policy.named_parameters())
    out = {
        "embed_equal": torch.equal(got["embed"], named["model.language_model.embed_tokens.weight"].detach().bfloat16().float()),
        "lm_head_equal": torch.equal(got["lm_head"], named["lm_head.weight"].detach().bfloat16().float()),
    }
    prompts = [PromptEncoder(processor)(r) for r in load_records(data)[:3]]
    # A prompt extended by generated ids (`anytime_cuts` answers from a cut thought) goes to vLLM as
    # ids, images included: its greedy continuation is the rest of the text prompt's.
    (whole,), = engine.generate(prompts[:1], 1, temperature=0.0, top_p=1.0, max_tokens=12, budget=None, seeds=[3])
    (rest,), = engine.generate([prompts[0].extended(whole.token_ids[:5])], 1, temperature=0.0, top_p=1.0,
                               max_tokens=7, budget=None, seeds=[3])
    out["token_prompt_continues"] = rest.token_ids == whole.token_ids[5:] and len(whole.token_ids) == 12
    groups = engine.generate(prompts, 2, temperature=1.0, top_p=1.0, max_tokens=24, budget=None, seeds=[11, 13, 17])
    rows = [Sample(group=0, prompt=p, response_ids=c.token_ids, loss_mask=[1] * len(c.token_ids),
                   num_thinking_tokens=0, outcome=Outcome.STOPPED, engine_logprobs=c.engine_logprobs)
            for p, g in zip(prompts, groups) for c in g]
    batch = collate(rows, processor.tokenizer.pad_token_id)
    trained_copy = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    for name, model_params in (("trained", None), ("initial", initial)):
        if model_params is not None:
            with torch.no_grad():
                for k, p in policy.named_parameters():
                    p.copy_(model_params[k])
        with torch.no_grad():
            logp = token_logprobs(SequenceLogprobs(policy), batch)
        out[f"mismatch_{name}"] = ((logp - batch.engine_logprobs).abs() * batch.loss_mask).sum().item() / batch.loss_mask.sum().item()
    policy.load_state_dict(trained_copy)
    return out


def fingerprint(prompt) -> str:
    """A prompt's identity: the synthetic records share texts and differ in their images / videos."""
    import hashlib

    digest = hashlib.sha1(prompt.text.encode())
    for key in sorted(prompt.tensors):
        digest.update(prompt.tensors[key].numpy().tobytes())
    return digest.hexdigest()


def tensor_parallel_run(model: str, data: str, out: str) -> dict:
    """Both ranks form one vLLM engine (tensor parallel 2) and FSDP2 shards the policy; weights go to
    the engine in small buckets gathered from the shards."""
    import torch.distributed as dist

    prompts: dict[int, list[str]] = {}
    forced: list[dict] = []

    def record(step: int, samples) -> None:
        prompts[step] = sorted({fingerprint(s.prompt) for s in samples})
        forced.extend({"ids": s.response_ids, "mask": s.loss_mask, "forced": s.answer_forced,
                       "think": s.num_thinking_tokens, "budget": s.think_budget} for s in samples)

    # micro_batch_size=0: whole minibatches, so a forward can hold images and videos on one rank and
    # one kind on the other: FSDP2 still pairs up because the scorer calls the vision tower once.
    cfg = config("vllm", model, data, f"{out}/a", distributed="fsdp", micro_batch_size=0, rollout_tensor_parallel_size=2,
                 weight_sync_bucket_mb=0.05)
    cfg.steps = 2
    a = train(cfg, reward_fns=reward_fns(), on_step=record)
    from training.learner import sharding

    full = dict(sharding.full_named_parameters(a["model"]))

    def vocab_shard(layer_of):  # vocab-parallel: this rank's engine holds rows [start, end) of the vocabulary
        def read(m):
            layer = layer_of(m)
            ix = layer.shard_indices
            return (ix.org_vocab_start_index, ix.org_vocab_end_index,
                    layer.weight[: ix.org_vocab_end_index - ix.org_vocab_start_index].detach().float().clone())
        return read

    result = {"rank": dist.get_rank(), "samples": forced, "prompts": prompts, "history": timeless(a["history"])}
    for key, name, layer_of in (("embed", "model.language_model.embed_tokens.weight", lambda m: m.language_model.model.embed_tokens),
                                ("lm_head", "lm_head.weight", lambda m: m.language_model.lm_head)):
        start, end, rows = a["engine"].llm.apply_model(vocab_shard(layer_of))[0]
        result[f"{key}_rows"] = [start, end, full[name].shape[0]]
        result[f"{key}_equal"] = torch.equal(rows, full[name][start:end].bfloat16().float())
    from transformers import AutoModelForImageTextToText

    initial = params(AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32))
    result["changed"] = max_diff(initial, full)
    from training.dist import shutdown

    shutdown()
    return result


def main() -> None:
    engine_kind, model, data, out = sys.argv[1:5]
    if engine_kind == "vllm-tp":
        result = tensor_parallel_run(model, data, out)
        Path(out, f"result-rank{result['rank']}.json").write_text(json.dumps(result))
        return
    from transformers import AutoModelForImageTextToText, AutoProcessor

    initial = params(AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32))
    forced: list[dict] = []

    def record(step: int, samples) -> None:
        forced.extend({"ids": s.response_ids, "mask": s.loss_mask, "forced": s.answer_forced,
                       "think": s.num_thinking_tokens, "budget": s.think_budget} for s in samples)

    # ddp also draws budgets and balances them: each rank's masses are summed over both ranks.
    drawn = {"rollout_budget_choices": "8,16", "budget_balance": "mass"} if engine_kind == "ddp" else {}
    a = train(config(engine_kind, model, data, f"{out}/a", **drawn), reward_fns=reward_fns(), on_step=record)
    sharded = engine_kind.endswith("fsdp")
    result = {"changed": None if sharded else max_diff(initial, params(a["policy"])),
              "samples": forced, "history_a": timeless(a["history"]),
              "checkpoint": str(a["checkpoint"])}
    if sharded:  # killed after step 3, resumed from the DCP checkpoint of step 2
        from training.learner import sharding

        full_a = {k: v.clone() for k, v in sharding.full_named_parameters(a["model"])}
        engine = a["engine"] if engine_kind == "vllm-fsdp" else None  # one vLLM engine per process
        if engine is not None:  # this rank's engine holds the weights gathered from the shards
            got = engine.llm.apply_model(lambda m: {"embed": m.language_model.model.embed_tokens.weight.detach().float().clone(),
                                                    "lm_head": m.language_model.lm_head.weight.detach().float().clone()})[0]
            result["embed_equal"] = torch.equal(got["embed"], full_a["model.language_model.embed_tokens.weight"].bfloat16().float())
            result["lm_head_equal"] = torch.equal(got["lm_head"], full_a["lm_head.weight"].bfloat16().float())
        shutil.rmtree(f"{out}/b", ignore_errors=True)
        train(config(engine_kind, model, data, f"{out}/b"), reward_fns=reward_fns(), engine=engine, stop_after=3)
        b = train(config(engine_kind, model, data, f"{out}/b"), reward_fns=reward_fns(), engine=engine)
        full_b = dict(sharding.full_named_parameters(b["model"]))
        result["changed"] = max_diff(initial, full_a)
        result["resume_diff"] = max_diff(full_a, full_b)
        result["history_b"] = timeless(b["history"])
    if engine_kind in ("ddp", "fsdp", "vllm-fsdp"):  # every rank must hold the same weights after the averaged updates
        import torch.distributed as dist

        sums = [None] * dist.get_world_size()
        if engine_kind == "ddp":
            dist.all_gather_object(sums, [p.double().sum().item() for p in params(a["policy"]).values()])
            result["rank_param_sums"] = sums
        result["rank"] = dist.get_rank()
        from training.dist import shutdown

        shutdown()  # what `thinkcap train` does at the end
    else:
        if engine_kind == "vllm":
            result.update(engine_checks(a["engine"], a["policy"], initial, AutoProcessor.from_pretrained(model), data))
        engine = a["engine"] if engine_kind == "vllm" else None  # one vLLM engine per process
        shutil.rmtree(f"{out}/b", ignore_errors=True)
        train(config(engine_kind, model, data, f"{out}/b"), reward_fns=reward_fns(), engine=engine, stop_after=3)
        b = train(config(engine_kind, model, data, f"{out}/b"), reward_fns=reward_fns(), engine=engine)
        result["resume_diff"] = max_diff(params(a["policy"]), params(b["policy"]))
        result["history_b"] = timeless(b["history"])
        from training.dist import shutdown

        shutdown()  # as `thinkcap train` ends: vLLM's exit handler must find nothing left to break on
    # A file per process: two ranks printing ~14 kB lines to one pipe can interleave them.
    rank = result.get("rank", 0)
    Path(out, f"result-rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
