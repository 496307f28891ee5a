"""What an engine needs so the think-budget processor runs in it, exactly once.

Call `prepare_engine_env()` before the process builds its first vLLM engine, and pass
`**processor_kwargs()` to `LLM(...)` / `AsyncEngineArgs(...)`.

Why (vLLM 0.32, read from its sources):
- On GPU, 0.32 defaults to the V2 model runner, whose logits-processor interface differs
  (`vllm.v1.worker.gpu.sample.logits_processor`). Our class serves both (`processor_v2` under
  V2), but only the V1 path has run in a real engine here (the CPU build has no Triton and always
  runs V1), so thinkcap keeps V1 as its default: `VLLM_USE_V2_MODEL_RUNNER=0` unless the caller
  set `VLLM_USE_V2_MODEL_RUNNER=1` to choose V2. vLLM freezes its environment once an engine core
  starts, so set it before that.
- The entry point already builds one processor in every engine, but vLLM only hands real output
  ids to processors under async scheduling (the GPU default) when one was *listed* in
  `logits_processors=` (vllm#52461: otherwise they see -1 placeholders). Listing ours too builds a
  second instance (vLLM concatenates plugins and the list); the first one built owns the engine
  and the other stays idle (`ThinkBudgetLogitsProcessor.owner`), so budgets apply exactly once.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from typing import Any

V2_RUNNER_ENV = "VLLM_USE_V2_MODEL_RUNNER"
ENTRY_POINT_GROUP = "vllm.logits_processors"
PROCESSOR_FQCN = "vllm_adapter.processor:ThinkBudgetLogitsProcessor"

# Measured on CPU: an in-process executor with one OpenMP thread starts in ~7 s instead of ~46 s,
# and vLLM refuses to start when its default KV cache does not fit beside other processes.
CPU_ENV_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}


def is_cpu_build() -> bool:
    """The CPU wheel of vLLM is a different distribution (`vllm-cpu`)."""
    try:
        distribution("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


def prepare_engine_env(environ: MutableMapping[str, str] | None = None) -> None:
    """Select vLLM's V1 model runner unless the caller chose one: `VLLM_USE_V2_MODEL_RUNNER=1`
    selects V2 (budgets enforced by `processor_v2`), `0` or unset V1. Anything else is refused
    rather than guessed."""
    env = os.environ if environ is None else environ
    value = env.get(V2_RUNNER_ENV, "").strip()
    if value == "":
        env[V2_RUNNER_ENV] = "0"
    elif value not in ("0", "1"):
        raise RuntimeError(f"{V2_RUNNER_ENV}={value!r}: set 1 (vLLM's V2 model runner) or 0 (V1, thinkcap's default)")


def entry_point_installed() -> bool:
    """True when this environment registers our processor for every vLLM engine."""
    return any(ep.value == PROCESSOR_FQCN for ep in entry_points(group=ENTRY_POINT_GROUP))


def processor_kwargs() -> dict[str, Any]:
    """Engine keyword arguments that install the processor (once, see the module docstring).

    Listed even when the entry point is installed: that is what makes vLLM give processors real
    output ids under async scheduling; the duplicate instance stays idle.
    """
    return {"logits_processors": [PROCESSOR_FQCN]}
