"""What an engine needs so the think-budget processor runs in it exactly once.

Call `prepare_engine_env()` before the first vLLM engine of the process is built, and pass
`**processor_kwargs()` to `LLM(...)` / `AsyncEngineArgs(...)`.

Why (vLLM 0.32, read from its sources):
- On GPU, 0.32 defaults to the V2 model runner, whose loader rejects every V1-interface plugin in
  the `vllm.logits_processors` entry-point group ("... is not a subclass of
  vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor") — with thinkcap installed, *any*
  engine in the environment fails to start under V2. `VLLM_USE_V2_MODEL_RUNNER=0` selects the V1
  runner. vLLM caches its env vars once an engine has started, so set it before that.
- The entry point already builds one processor in every engine. Listing the class again in
  `logits_processors=` builds a second one (vLLM concatenates plugins and the list, without
  de-duplication). But only a listed processor makes vLLM hand real output ids to processors
  under async scheduling (the GPU default), so we list `ExplicitThinkBudgetLogitsProcessor`
  and the entry-point instance stands aside: exactly one active instance either way.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from importlib.metadata import entry_points
from typing import Any

V2_RUNNER_ENV = "VLLM_USE_V2_MODEL_RUNNER"
ENTRY_POINT_GROUP = "vllm.logits_processors"
ENTRY_POINT_TARGET = "serving.vllm_processor:ThinkBudgetLogitsProcessor"


def prepare_engine_env(environ: MutableMapping[str, str] | None = None) -> None:
    """Select vLLM's V1 model runner, the one whose logits-processor interface we implement.

    Leaves an explicit `VLLM_USE_V2_MODEL_RUNNER=0` alone and refuses an explicit `1`, which
    would make the engine reject the processor at start-up.
    """
    env = os.environ if environ is None else environ
    value = env.get(V2_RUNNER_ENV)
    if value is None or value.strip() == "":
        env[V2_RUNNER_ENV] = "0"
    elif value.strip() != "0":
        raise RuntimeError(
            f"{V2_RUNNER_ENV}={value} selects vLLM's V2 model runner, which cannot load the think-budget "
            f"logits processor (a V1-interface plugin); unset it or set {V2_RUNNER_ENV}=0"
        )


def entry_point_installed() -> bool:
    """True when this environment registers our processor for every vLLM engine."""
    return any(ep.value == ENTRY_POINT_TARGET for ep in entry_points(group=ENTRY_POINT_GROUP))


def processor_kwargs() -> dict[str, Any]:
    """Engine keyword arguments that install the processor once (see the module docstring)."""
    from serving.vllm_processor import ExplicitThinkBudgetLogitsProcessor

    return {"logits_processors": [ExplicitThinkBudgetLogitsProcessor]}
