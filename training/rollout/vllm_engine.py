"""Colocated vLLM rollout engine: generates groups with the think-budget processor, takes new weights.

The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so a weight sync is a
function call on the worker, no copy through a socket: after each update the trainer hands the
policy's HF-named tensors to vLLM's `reload_weights`, which maps HF names onto vLLM's fused layers
(q/k/v → qkv_proj, ...), re-runs any kernel-specific weight processing (the CPU backend repacks
linear weights) and clears the encoder/multimodal caches that hold outputs of the old weights.
The tensors come as a lazy stream gathered in buckets, and sleep mode wraps the push
(training.rollout.weight_sync). Under torchrun a group of `tensor_parallel_size` consecutive ranks is one
engine; each rank still generates (and trains on) its own prompts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import torch

from training.config import ConfigError
from training.prompts import EncodedPrompt
from training.rollout.samples import Budgets, Completion, per_prompt
from training.rollout.weight_sync import EngineMemory, check_sleep_mode


class VLLMEngine:
    def __init__(self, model_path: str, *, seed: int, max_model_len: int, gpu_memory_utilization: float,
                 limit_mm_per_prompt: dict[str, int] | None = None, log_level: str = "error", world_size: int = 1,
                 tensor_parallel_size: int = 1, sleep_mode: bool = False):
        """world_size > 1 (under torchrun): vLLM's external launcher, so vLLM joins the process group
        torchrun set up instead of starting workers. Consecutive ranks form groups of
        `tensor_parallel_size`; each group is one engine with tensor parallel inside it, and the
        world / tp groups are its data-parallel replicas. Without `data_parallel_size` vLLM takes
        all ranks for one group and, at TP 1, rank 1 dies in gloo (`rank < size. 1 vs 1`).
        sleep_mode: vLLM's enable_sleep_mode, for `sleep()` between rollouts and the next push
        (GPU only; refused elsewhere)."""
        check_tensor_parallel(tensor_parallel_size, world_size)
        if sleep_mode:
            check_sleep_mode()
        # In-process engine core: weight sync needs the model object in this process.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        # vLLM logs ~60 lines per weight sync at INFO/WARNING (bf16 notices, "Failed to load
        # weights" for layers that only hold buffers, set_num_threads): they bury the progress line
        # and read like a sync failure. vLLM reads the level when first imported; set it on its
        # logger too in case it already was. An explicit VLLM_LOGGING_LEVEL wins.
        level = os.environ.setdefault("VLLM_LOGGING_LEVEL", log_level.upper())
        logging.getLogger("vllm").setLevel(level)
        if not torch.cuda.is_available():
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the CPU default (4) is far too much here
        from vllm_adapter.engine_env import prepare_engine_env, processor_kwargs
        from vllm import LLM

        prepare_engine_env()
        self.llm = LLM(
            model=model_path, seed=seed, max_model_len=max_model_len, enforce_eager=True,
            gpu_memory_utilization=gpu_memory_utilization, dtype="bfloat16",
            limit_mm_per_prompt=limit_mm_per_prompt or {"image": 1, "video": 1},
            # Whole prompts per step: vLLM 0.32 crashes ("CPU Generator does not use offset") when a
            # seeded request's prefill is split over steps on CPU, and we seed every request.
            enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 8192),
            # Log-probs after temperature, like the trainer's scores (the sync check compares them).
            logprobs_mode="processed_logprobs",
            **({"distributed_executor_backend": "external_launcher", "tensor_parallel_size": tensor_parallel_size,
                "data_parallel_size": world_size // tensor_parallel_size} if world_size > 1 else {}),
            **({"enable_sleep_mode": True} if sleep_mode else {}),
            **processor_kwargs(),
        )
        self.memory = EngineMemory(self.llm, sleep_mode)
        self.group = tp_group() if tensor_parallel_size > 1 else None

    def generate(
        self, prompts: list[EncodedPrompt], n: int, *, temperature: float, top_p: float, max_tokens: int,
        budget: Budgets, seeds: list[int],
    ) -> list[list[Completion]]:
        """n completions per prompt, under one BudgetParams for all or one per prompt. A per-request
        seed makes a step's rollouts a pure function of (weights, seed), which is what lets a resumed
        run reproduce the uninterrupted one."""
        from vllm import SamplingParams

        requests: list[dict[str, Any]] = []
        for prompt, seed, params_of in zip(prompts, seeds, per_prompt(budget, len(prompts)), strict=True):
            request: dict[str, Any] = ({"prompt": prompt.text} if prompt.vllm_ids is None
                                       else {"prompt_token_ids": prompt.vllm_ids})
            if prompt.vllm_mm_data:
                request["multi_modal_data"] = prompt.vllm_mm_data
            requests.append((request, {
                "n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed,
                "extra_args": params_of.to_extra_args() if params_of is not None else None}))
        # Tensor parallel: the ranks of a group are one engine and must run the same requests
        # together, so each rank sends its own requests to the others (as TRL's colocate mode does)
        # and keeps the outputs of its own. Every rank thus still rolls out exactly its slice of
        # the step's prompts: rewards, advantages, dynamic sampling and the loss see the same
        # samples, split over the same ranks, as with one engine per rank (GRPO math unchanged).
        everyone, mine = gather_requests(self.group, requests)
        if not everyone:
            return []  # no rank of the group has a prompt this round
        outputs = self.llm.generate(
            [r for r, _ in everyone],
            [SamplingParams(**kw, logprobs=0,  # the sampled token's logprob: compared with the trainer's (sync check)
                            skip_special_tokens=False, detokenize=False) for _, kw in everyone],
            use_tqdm=False)[mine]
        groups = []
        for prompt, out in zip(prompts, outputs, strict=True):
            if list(out.prompt_token_ids) != prompt.input_ids:
                raise RuntimeError(
                    "vLLM tokenised a prompt differently from the HF processor the policy trains with "
                    f"({len(out.prompt_token_ids)} vs {len(prompt.input_ids)} ids); check the model's "
                    "processor config and the video metadata")
            groups.append([
                Completion(
                    prompt_ids=prompt.input_ids, token_ids=list(c.token_ids), finish_reason=c.finish_reason or "",
                    engine_logprobs=[lp[t].logprob for lp, t in zip(c.logprobs, c.token_ids)] if c.logprobs else None,
                )
                for c in out.outputs
            ])
        return groups

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load full HF-named tensors (e.g. `model.named_parameters()`, or the bucketed stream of
        `weight_sync.bucketed_weights`) into the engine's model. The stream is consumed lazily by
        one `reload_weights`, waking the engine around it when it sleeps. Under tensor parallel
        every rank pushes the same full tensors and vLLM keeps its own slice of each."""
        self.memory.push((name, t.detach()) for name, t in named_tensors)

    def sleep(self) -> None:
        """Hand the rollout memory back to training until the next `load_weights` (vllm_sleep_mode)."""
        self.memory.sleep()


def check_tensor_parallel(tensor_parallel_size: int, world_size: int) -> None:
    """Refuse a tensor-parallel size that does not split the torchrun ranks into whole engines."""
    if tensor_parallel_size < 1 or world_size % tensor_parallel_size:
        raise ConfigError(f"rollout_tensor_parallel_size ({tensor_parallel_size}) must divide the number of "
                          f"torchrun ranks ({world_size}): each group of that many ranks is one vLLM engine")


def tp_group() -> Any:
    """vLLM's tensor-parallel group of this rank. The external launcher lays ranks out as
    [data parallel, tensor parallel], so a group is consecutive ranks; we rely on that below
    (a group's prompts are its ranks' slices), so check it."""
    import torch.distributed as dist
    from vllm.distributed.parallel_state import get_tp_group

    group = get_tp_group()
    first = dist.get_rank() - group.rank_in_group
    if list(group.ranks) != list(range(first, first + group.world_size)):
        raise RuntimeError(f"vLLM's tensor-parallel group is not consecutive ranks: {group.ranks}")
    return group


def gather_requests(group: Any, requests: list[Any]) -> tuple[list[Any], slice]:
    """All requests of this rank's tensor-parallel group in rank order, and where this rank's own
    sit in that list; without a group (TP 1), just this rank's. The ranks may hold different
    numbers of prompts (refill rounds), so the offsets come from the gathered lengths."""
    if group is None:
        return requests, slice(0, len(requests))
    import torch.distributed as dist

    parts: list[Any] = [None] * group.world_size
    dist.all_gather_object(parts, requests, group=group.cpu_group)  # gloo: objects, also beside NCCL
    start = sum(len(p) for p in parts[:group.rank_in_group])
    return [r for p in parts for r in p], slice(start, start + len(requests))
