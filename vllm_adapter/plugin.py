"""`vllm.general_plugins` entry point: runs in every vLLM process (API servers and engine cores).

Registers the `glm41v` reasoning parser by name without importing it (vLLM imports it on first
use), so `vllm serve MODEL --reasoning-parser glm41v` works wherever thinkcap is installed and the
engine's structured-output manager finds the same parser as the API server.
"""

from __future__ import annotations

REASONING_PARSER = ("glm41v", "vllm_adapter.reasoning_parser", "Glm41vReasoningParser")


def register() -> None:
    from vllm.reasoning import ReasoningParserManager

    name, module, cls = REASONING_PARSER
    if name not in ReasoningParserManager.reasoning_parsers:
        ReasoningParserManager.register_lazy_module(name, module, cls)
