"""Helpers for tests that run the real in-process vLLM CPU engine on the tiny model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from serving.engine_args import prepare_engine_env

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


def think_processors(llm) -> list[tuple[str, bool]]:
    """(class name, active) of every think-budget processor inside the engine's model runner."""

    def collect(worker) -> list[tuple[str, bool]]:
        procs = worker.model_runner.input_batch.logitsprocs.all
        return [(type(p).__name__, p.active) for p in procs if type(p).__name__.endswith("ThinkBudgetLogitsProcessor")]

    (result,) = llm.collective_rpc(collect)
    return result
