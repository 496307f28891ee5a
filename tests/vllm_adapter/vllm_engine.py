"""Helpers for tests that run a real in-process vLLM CPU engine on the tiny model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vllm_adapter.engine_env import prepare_engine_env

# In-process engine core (start ~7 s instead of ~46 s), one thread (the cores are shared), and
# a KV cache that fits beside the other engineers' engines.
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}


def make_llm(model_dir: Path, **engine_kwargs: Any):
    for key, value in ENGINE_ENV.items():
        os.environ.setdefault(key, value)
    prepare_engine_env()
    from vllm import LLM

    return LLM(model=str(model_dir), enforce_eager=True, max_model_len=512, seed=0, **engine_kwargs)


def think_prompt(llm, text: str) -> list[int]:
    """Chat-template prompt ids for one user turn, ending in an open `<think>`."""
    tok = llm.get_tokenizer()
    chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return tok.encode(chat + "<think>", add_special_tokens=False)


def sampling(max_tokens: int = 40, logit_bias: dict[int, float] | None = None, **extra_args: Any):
    """Greedy, ignoring EOS so every row runs to max_tokens; budget keys go to extra_args."""
    from vllm import SamplingParams

    return SamplingParams(
        max_tokens=max_tokens, temperature=0.0, ignore_eos=True, logit_bias=logit_bias, extra_args=extra_args or None
    )


def generate(llm, prompts: list[list[int]], params) -> list[list[int]]:
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outs]


def budget_processors(llm) -> list:
    """Every think-budget processor instance inside the (in-process) engine's model runner."""
    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    def collect(worker) -> list:
        return [p for p in worker.model_runner.input_batch.logitsprocs.all if isinstance(p, ThinkBudgetLogitsProcessor)]

    (found,) = llm.collective_rpc(collect)
    return found


@contextmanager
def recorded_updates(processor) -> Iterator[list]:
    """Record the non-empty BatchUpdates vLLM hands the processor while the block runs."""
    seen: list = []
    original = processor.update_state

    def spy(batch_update):
        if batch_update is not None:
            seen.append(batch_update)
        original(batch_update)

    processor.update_state = spy  # instance attribute: the input batch calls it per step
    try:
        yield seen
    finally:
        del processor.update_state
