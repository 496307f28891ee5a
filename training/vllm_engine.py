"""Colocated vLLM rollout engine: generates groups with the think-budget processor, takes new weights.

The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so a weight sync is a
function call on the worker, no copy through a socket: after each update the trainer hands the
policy's HF-named tensors to vLLM's `reload_weights`, which maps HF names onto vLLM's fused layers
(q/k/v → qkv_proj, ...), re-runs any kernel-specific weight processing (the CPU backend repacks
linear weights) and clears the encoder/multimodal caches that hold outputs of the old weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import torch

from training.data import EncodedPrompt
from training.rollout import Budgets, Completion, per_prompt


class VLLMEngine:
    def __init__(self, model_path: str, *, seed: int, max_model_len: int, gpu_memory_utilization: float,
                 limit_mm_per_prompt: dict[str, int] | None = None, log_level: str = "error", world_size: int = 1):
        """world_size > 1 (under torchrun): one engine per rank, built with vLLM's external launcher
        as data parallel of size world_size (tensor parallel 1). vLLM then joins the process group
        torchrun set up instead of starting workers; each rank generates its own prompts. Without
        `data_parallel_size` vLLM takes the 2 ranks for one TP=1 group and rank 1 dies in gloo
        (`rank < size. 1 vs 1`)."""
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
            **({"distributed_executor_backend": "external_launcher", "tensor_parallel_size": 1,
                "data_parallel_size": world_size} if world_size > 1 else {}),
            **processor_kwargs(),
        )

    def generate(
        self, prompts: list[EncodedPrompt], n: int, *, temperature: float, top_p: float, max_tokens: int,
        budget: Budgets, seeds: list[int],
    ) -> list[list[Completion]]:
        """n completions per prompt, under one BudgetParams for all or one per prompt. A per-request
        seed makes a step's rollouts a pure function of (weights, seed), which is what lets a resumed
        run reproduce the uninterrupted one."""
        from vllm import SamplingParams

        requests: list[dict[str, Any]] = []
        params = []
        for prompt, seed, params_of in zip(prompts, seeds, per_prompt(budget, len(prompts)), strict=True):
            request: dict[str, Any] = {"prompt": prompt.text}
            if prompt.vllm_mm_data:
                request["multi_modal_data"] = prompt.vllm_mm_data
            requests.append(request)
            params.append(SamplingParams(
                n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                logprobs=0,  # the sampled token's logprob: compared with the trainer's (sync check)
                skip_special_tokens=False, detokenize=False,
                extra_args=params_of.to_extra_args() if params_of is not None else None,
            ))
        outputs = self.llm.generate(requests, params, use_tqdm=False)
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
        """Load HF-named tensors (e.g. `model.named_parameters()`) into the engine's model."""
        weights = [(name, t.detach()) for name, t in named_tensors]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
        # Everything cached from the old weights must go: KV blocks of shared prompt prefixes and
        # vision-encoder outputs. The worker cleared its side of the encoder and multimodal caches;
        # clear the scheduler's and the front-end's too, or they would point at entries now gone.
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.llm.reset_mm_cache()
