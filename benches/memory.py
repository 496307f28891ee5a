"""`thinkcap bench train-memory`: peak memory of one GRPO optimizer step per memory setting, as ratios.

    thinkcap bench train-memory [--hidden 256 --layers 6 --vocab 32768 --rows 8 --prompt 64 --response 448]

A random GLM-4.1V language model of the given size (the tiny model's architecture, scaled) takes one
full update (old log-probs, loss, backward, AdamW step) on the same fixed batch under each setting:

    plain          whole batch in one forward, all response logits in one [tokens, vocab] block
    +chunked       log-probs over 1024... here `--chunk` response tokens at a time (the trainer's default path)
    +micro-batch   + micro_batch_size 1 (gradient accumulation)
    +checkpointing + gradient checkpointing of every decoder layer
    +fsdp2 x2      + FSDP2 over 2 torchrun ranks (gloo on CPU, NCCL on GPU): per-rank peak, half the rows each

Each setting runs in its own process. Peak = `torch.cuda.max_memory_allocated` on a GPU, else the
process's peak RSS over the step minus its RSS just before the model is built: the kernel's peak
mark (VmHWM) is reset there (`/proc/self/clear_refs`), because the lifetime peak (ru_maxrss) may
already be set by the imports and then shows no growth at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SETTINGS = {  # name → (chunk = None: one block, micro_batch_size, gradient_checkpointing, ranks)
    "plain": (None, 0, False, 1),
    "+chunked": ("chunk", 0, False, 1),
    "+micro-batch": ("chunk", 1, False, 1),
    "+checkpointing": ("chunk", 1, True, 1),
    "+fsdp2 x2": ("chunk", 1, True, 2),
}


def build_model(args: argparse.Namespace) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from thinkcap.tiny_model import ensure_tiny_model

    config = AutoConfig.from_pretrained(ensure_tiny_model())
    text = config.text_config
    text.hidden_size, text.num_hidden_layers, text.vocab_size = args.hidden, args.layers, args.vocab
    # Head width stays the tiny model's 32: its M-RoPE sections are sized for it.
    heads = max(1, args.hidden // 32)
    text.intermediate_size, text.num_attention_heads = 3 * args.hidden, heads
    text.num_key_value_heads = heads // 2 if heads % 2 == 0 else heads
    config.vision_config.out_hidden_size = args.hidden
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.config.use_cache = False
    return model


def fixed_rows(args: argparse.Namespace, rank: int, world: int) -> list[Any]:
    import torch

    from training.prompts import EncodedPrompt
    from training.rollout.samples import Outcome, Sample

    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(args.rows):
        ids = torch.randint(10, args.vocab, (args.prompt + args.response,), generator=g).tolist()
        prompt = EncodedPrompt("", ids[: args.prompt], [0] * args.prompt, {}, {})
        s = Sample(group=i, prompt=prompt, response_ids=ids[args.prompt:], loss_mask=[1] * args.response,
                   num_thinking_tokens=0, outcome=Outcome.STOPPED)
        s.advantage = 1.0 if i % 2 else -1.0
        rows.append(s)
    return rows[rank::world]


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"{field} missing from /proc/self/status")


def rss_mark() -> int:
    """Reset the peak-RSS mark (Linux: VmHWM, via clear_refs "5") and return the RSS now, in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def measure(args: argparse.Namespace) -> None:
    """One setting, in this process (under torchrun for fsdp): write the peak to args.result."""
    import torch

    from training import dist
    from training.learner import sharding
    from training.config import GRPOConfig
    from training.learner.policy import SequenceLogprobs
    from training.learner.update import optimizer_step, prepare

    rank, world, device = dist.init()
    chunk, micro, ckpt, _ = SETTINGS[args.setting]
    chunk_size = args.rows * args.response if chunk is None else args.chunk
    cfg = GRPOConfig(micro_batch_size=micro, gradient_checkpointing=ckpt, logprob_chunk_size=chunk_size,
                     distributed="fsdp" if world > 1 else "ddp", group_size=2)
    base = rss_mark() if device.type != "cuda" else 0
    model = build_model(args).to(device).train()
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    wrapped = sharding.wrap(SequenceLogprobs(model, 1.0, chunk_size), cfg, world)
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=1e-5)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    (mb,), _ = prepare(fixed_rows(args, rank, world), cfg, 1, wrapped, None, 0, world, device)
    optimizer_step(mb, cfg, wrapped, optimizer, world, device)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else _status_bytes("VmHWM") - base)
    peaks = dist.gather(peak, world)
    if rank == 0:
        Path(args.result).write_text(json.dumps({"peak_bytes": max(peaks), "ranks": world}))
    dist.shutdown()


def run_setting(name: str, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    ranks = SETTINGS[name][3]
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "peak.json"
        inner = [__file__, "--setting", name, "--result", str(result), *argv]
        cmd = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port", "29561", *inner]
               if ranks > 1 else [sys.executable, *inner])
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"train-memory setting {name!r} failed:\n{proc.stderr[-3000:]}")
        return json.loads(result.read_text())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkcap bench train-memory", description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=256, help="language model width (default 256)")
    p.add_argument("--layers", type=int, default=6, help="decoder layers (default 6)")
    p.add_argument("--vocab", type=int, default=32768, help="vocabulary size (default 32768)")
    p.add_argument("--rows", type=int, default=8, help="samples in the batch, over all ranks (default 8)")
    p.add_argument("--prompt", type=int, default=64, help="prompt tokens per sample (default 64)")
    p.add_argument("--response", type=int, default=448, help="response tokens per sample (default 448)")
    p.add_argument("--chunk", type=int, default=256, help="logprob_chunk_size of the chunked settings (default 256)")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {','.join(SETTINGS)}")
    p.add_argument("--json", help="also write the table here")
    p.add_argument("--setting", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.setting:
        measure(args)
        return 0
    names = [n.strip() for n in args.settings.split(",")]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        print(f"thinkcap bench train-memory: error: unknown settings {unknown}; known: {list(SETTINGS)}", file=sys.stderr)
        return 2
    passthrough = [a for a in argv if a not in ("--settings", args.settings)]
    if args.json:
        passthrough = [a for a in passthrough if a not in ("--json", args.json)]
    rows = {name: run_setting(name, args, passthrough) for name in names}
    first = rows[names[0]]["peak_bytes"]
    print(f"peak memory of one GRPO update: hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}, "
          f"{args.rows} x ({args.prompt} + {args.response}) tokens")
    print(f"{'setting':<16}{'peak MiB':>10}{'vs ' + names[0]:>12}")
    for name, r in rows.items():
        r["ratio"] = r["peak_bytes"] / first if first else float("nan")
        print(f"{name:<16}{r['peak_bytes'] / 2**20:>10.0f}{r['ratio']:>12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
