"""`thinkcap bench NAME`: benchmarks that print ratios measured side by side in one run.

Each benchmark lives next to the code it measures and exposes `main(argv) -> int | None`.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, tuple[str, str]] = {
    "processor": ("benches.processor", "decode throughput with the think-budget processor vs none vs vLLM's built-in"),
    "processor-apply": ("benches.processor_apply", "the processor's apply() per step, V1 path vs V2 path (batch 256, 151k vocab)"),
    "server": ("benches.server", "thinkcap serve vs vLLM's own OpenAI server under vLLM's benchmark client"),
    "learning": ("benches.learning", "GRPO reward curve on the synthetic task, forced answering on vs off"),
    "train-memory": ("benches.memory", "peak memory of a GRPO update: plain, chunked log-probs, micro-batch, checkpointing, FSDP2"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        width = max(map(len, BENCHMARKS))
        print("usage: thinkcap bench NAME [ARGS...]\n\nbenchmarks:")
        for name, (_, help_) in BENCHMARKS.items():
            print(f"  {name:<{width}}  {help_}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)
