"""`thinkcap bench processor`: decode throughput with the think-budget processor vs none vs vLLM's
built-in thinking budget, measured side by side in one process on the vLLM CPU engine.

Two in-process engines on the same model:
- `plain`: vanilla vLLM, no custom logits processor at all (the entry point is hidden from it);
- `thinkcap`: built like our server (entry point + `logits_processors=`) plus a reasoning config,
  so vLLM's built-in `thinking_token_budget` works in it too.
Every case decodes the same batch (greedy, `ignore_eos`, so every row emits exactly
`--max-tokens` tokens); only the budget arguments differ. Runs alternate between cases and the
ratios are medians of per-round ratios, so drift on a shared machine hits every case alike. Besides
throughput, the time spent inside the budget code itself (our processor's methods, the built-in's
state holder) is clocked in the engine: that share is immune to other processes' load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HUGE_BUDGET = 1_000_000  # budgeted but never reached: pure bookkeeping overhead


@dataclass
class Case:
    name: str
    engine: str  # "plain" | "thinkcap"
    what: str
    budget_of_row: Callable[[int, int], dict[str, Any]]  # (row, max_tokens) -> SamplingParams kwargs
    wall_tps: list[float] = field(default_factory=list)  # tokens per wall-clock second
    cpu_tps: list[float] = field(default_factory=list)  # tokens per second of this process's CPU
    budget_share: list[float] = field(default_factory=list)  # budget-code time / wall time
    budget_us: list[float] = field(default_factory=list)  # budget-code time per decode step, microseconds


class Stopwatch:
    """Accumulates the time spent in chosen methods of live objects inside the engine."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, obj: Any, method: str) -> None:
        original = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(obj, method, timed)  # instance attribute: vLLM's call sites look it up per call


def ours(budget: int | None) -> dict[str, Any]:
    return {"extra_args": {"think_budget": budget}} if budget is not None else {}


def builtin(budget: int | None) -> dict[str, Any]:
    return {"thinking_token_budget": budget} if budget is not None else {}


def mixed_budget(row: int, max_tokens: int) -> int | None:
    """Half the rows unbudgeted, a quarter forced mid-way (at varied points), a quarter never."""
    if row % 2 == 0:
        return None
    if row % 4 == 1:
        return max_tokens // 4 + row % max(1, max_tokens // 2)
    return HUGE_BUDGET


def make_cases() -> list[Case]:
    return [
        Case("none", "plain", "vanilla vLLM, no custom processor", lambda r, m: {}),
        Case("ours-idle", "thinkcap", "our processor loaded, no request budgeted", lambda r, m: {}),
        Case("ours-all", "thinkcap", "ours, every row budgeted, none forced", lambda r, m: ours(HUGE_BUDGET)),
        Case("builtin-all", "thinkcap", "vLLM built-in, every row budgeted, none forced", lambda r, m: builtin(HUGE_BUDGET)),
        Case("ours-mixed", "thinkcap", "ours: 1/2 none, 1/4 forced, 1/4 never", lambda r, m: ours(mixed_budget(r, m))),
        Case("builtin-mixed", "thinkcap", "built-in, same mix", lambda r, m: builtin(mixed_budget(r, m))),
        # Every row in its grace window from a quarter of the way on (the close tag masked/ranked
        # each step there): the dearest budget work there is.
        Case("ours-grace", "thinkcap", "ours, every row in its grace window for 3/4 of the decode",
             lambda r, m: {"extra_args": {"think_budget": m // 4, "think_budget_grace": m}}),
    ]


@contextmanager
def entry_points_hidden() -> Iterator[None]:
    """Build an engine without the `vllm.logits_processors` plugins (the baseline engine)."""
    import vllm.v1.sample.logits_processor as lp

    saved = lp._load_logitsprocs_plugins
    lp._load_logitsprocs_plugins = lambda: []
    try:
        yield
    finally:
        lp._load_logitsprocs_plugins = saved


def padded_vocab_model(src: Path, vocab: int) -> Path:
    """A copy of the model at `src` whose vocabulary is padded to `vocab` ids (zero embedding and
    output rows, as real checkpoints pad theirs: GLM-4.1V's 151552 outputs for a smaller tokenizer).
    Same tokenizer, same layers: only the output width, and with it the per-step logits, sampling
    and vocabulary-wide work, become a real model's. Zero output rows score 0, below the best real
    id of every greedy step, so the decoded ids are the same tokens."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    out = src.with_name(f"{src.name}-vocab{vocab}")
    if (out / "config.json").exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    weights = load_file(tmp / "model.safetensors")
    for name in ("lm_head.weight", "model.language_model.embed_tokens.weight"):
        w = weights[name]  # [V0, H]
        if w.shape[0] > vocab:
            raise SystemExit(f"--vocab {vocab} is below the model's own vocabulary ({w.shape[0]})")
        weights[name] = torch.cat([w, w.new_zeros(vocab - w.shape[0], w.shape[1])])  # [vocab, H]
    save_file(weights, tmp / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tmp / "config.json").read_text())
    config["text_config"]["vocab_size"] = vocab
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    try:
        os.rename(tmp, out)
    except OSError:  # a concurrent build got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_engines(model: Path, batch: int, max_tokens: int) -> dict[str, Any]:
    from vllm import LLM
    from vllm.config import ReasoningConfig

    from vllm_adapter.engine_env import prepare_engine_env, processor_kwargs

    prepare_engine_env()
    common = dict(model=str(model), enforce_eager=True, max_model_len=max_tokens + 128, max_num_seqs=batch, seed=0)
    reasoning = ReasoningConfig(reasoning_start_str="<think>", reasoning_end_str="</think><answer>")
    with entry_points_hidden():
        plain = LLM(**common)
    thinkcap = LLM(**common, reasoning_config=reasoning, **processor_kwargs())
    return {"plain": plain, "thinkcap": thinkcap}


def clock_budget_code(llm) -> dict[str, Stopwatch]:
    """Stopwatches on our processors (both instances) and on the built-in's state holder."""
    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    def install(worker) -> dict[str, Stopwatch]:
        batch = worker.model_runner.input_batch
        watches = {"ours": Stopwatch(), "builtin": Stopwatch()}
        procs = [p for p in batch.logitsprocs.all if isinstance(p, ThinkBudgetLogitsProcessor)]
        assert sum(p.owner for p in procs) == 1, "expected exactly one owning processor"
        for proc in procs:
            for method in ("update_state", "apply"):
                watches["ours"].wrap(proc, method)
        holder = batch.thinking_budget_state_holder
        for method in ("sync_batch", "update_state", "apply_to_logits"):
            watches["builtin"].wrap(holder, method)
        return watches

    (watches,) = llm.collective_rpc(install)  # in-process engine: the objects themselves come back
    return watches


def prompts_for(llm, batch: int) -> list[dict[str, list[int]]]:
    """Short distinct chat prompts that leave `<think>` open, so decode dominates the run."""
    tok = llm.get_tokenizer()
    out = []
    for i in range(batch):
        chat = [{"role": "user", "content": f"Question {i}: what is {i} + {i * 7 % 13}?"}]
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) + "<think>"
        out.append({"prompt_token_ids": tok.encode(text, add_special_tokens=False)})
    return out


def run_once(llm, prompts: list, case: Case, max_tokens: int, watch: Stopwatch | None) -> None:
    from vllm import SamplingParams

    params = [
        SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True, **case.budget_of_row(i, max_tokens))
        for i in range(len(prompts))
    ]
    in_budget = watch.seconds if watch else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    outs = llm.generate(prompts, params, use_tqdm=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    assert n_tokens == max_tokens * len(prompts), "every row must decode exactly max_tokens"
    case.wall_tps.append(n_tokens / wall)
    case.cpu_tps.append(n_tokens / cpu)
    spent = (watch.seconds if watch else 0.0) - in_budget
    case.budget_share.append(spent / wall)
    case.budget_us.append(spent / max_tokens * 1e6)  # every row decodes max_tokens steps together


def paired_ratio(values: list[float], base: list[float]) -> float:
    """Median over rounds of value/base within the same round: runs of one round are seconds
    apart, so load from other processes that drifts over the benchmark largely cancels."""
    return statistics.median(v / b for v, b in zip(values, base))


def report(cases: list[Case], batch: int, max_tokens: int, runs: int, vocab: int | None = None) -> str:
    """Medians, with throughput ratios to the `none` case."""
    base = cases[0]
    lines = [
        f"decode throughput, batch {batch}, {max_tokens} tokens/row, {runs} alternating rounds (medians)"
        + (f", vocabulary {vocab}" if vocab else ""),
        f"{'case':<14} {'tok/cpu-s':>9} {'ratio':>7} {'tok/s':>7} {'ratio':>7} {'in budget code':>14} {'us/step':>7}  what",
    ]
    for c in cases:
        lines.append(
            f"{c.name:<14} {statistics.median(c.cpu_tps):>9.0f} {paired_ratio(c.cpu_tps, base.cpu_tps):>6.3f}x "
            f"{statistics.median(c.wall_tps):>7.0f} {paired_ratio(c.wall_tps, base.wall_tps):>6.3f}x "
            f"{100 * statistics.median(c.budget_share):>13.2f}% {statistics.median(c.budget_us):>7.1f}  {c.what}"
        )
    ours_all, builtin_all = (c for c in cases if c.name in ("ours-all", "builtin-all"))
    lines.append(f"ours-all / builtin-all throughput: {paired_ratio(ours_all.cpu_tps, builtin_all.cpu_tps):.3f} (cpu-time)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="thinkcap bench processor",
        description="Decode throughput with the think-budget processor vs none vs vLLM's built-in budget.",
    )
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the tiny model)")
    parser.add_argument("--batch", type=int, default=64, help="concurrent requests per run (default 64)")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens decoded per row (default 256)")
    parser.add_argument("--runs", type=int, default=9, help="measured rounds, each runs every case (default 9)")
    parser.add_argument("--vocab", type=int, default=None,
                        help="pad the model's vocabulary to this many ids (e.g. 151552, GLM-4.1V's) so the "
                             "step's vocabulary-wide work is a real model's; default: the model's own (1024 tiny)")
    args = parser.parse_args(argv)
    for name in ("batch", "max_tokens", "runs") + (("vocab",) if args.vocab is not None else ()):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from vllm_adapter.engine_env import CPU_ENV_DEFAULTS

    # In-process engines, one thread each (the machine is shared), a small CPU KV cache.
    for key, value in CPU_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if args.model is None:
        from thinkcap.tiny_model import ensure_tiny_model

        args.model = ensure_tiny_model()
    if args.vocab is not None:
        args.model = padded_vocab_model(args.model, args.vocab)
    engines = build_engines(args.model, args.batch, args.max_tokens)
    watches = clock_budget_code(engines["thinkcap"])
    prompts = prompts_for(engines["plain"], args.batch)
    cases = make_cases()

    def watch_for(case: Case) -> Stopwatch | None:
        return None if case.engine == "plain" else watches["builtin" if "builtin" in case.name else "ours"]

    for rnd in range(args.runs + 1):  # round 0 warms up and is dropped
        for case in cases:
            run_once(engines[case.engine], prompts, case, args.max_tokens, watch_for(case))
            if rnd == 0:
                case.wall_tps.clear(), case.cpu_tps.clear(), case.budget_share.clear(), case.budget_us.clear()
    print(report(cases, args.batch, args.max_tokens, args.runs, args.vocab))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
