"""`thinkcap` console command: a thin dispatcher, like `vllm serve` / `vllm bench`.

Each subcommand lives in its own module with a `main(argv) -> int | None`; only the chosen one is
imported, so `thinkcap tiny-model` never pays for importing vLLM and `thinkcap serve` can build its
parser from vLLM's own engine arguments.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serving.cli", "OpenAI-compatible server on vLLM with a per-request think budget"),
    "demo": ("ui.cli", "Gradio demo (images, video, think-budget control) over the server's HTTP API"),
    "train": ("training.cli", "GRPO training with forced answering in rollouts"),
    "eval": ("evaluation.cli", "accuracy vs thinking budget on any OpenAI-compatible server (CSV, JSON, plots)"),
    "bench": ("benches.cli", "benchmarks that print side-by-side ratios"),
    "tiny-model": ("thinkcap.tiny_model", "build the tiny random-weight GLM-4.1V into a folder"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: thinkcap COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `thinkcap COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"thinkcap: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
