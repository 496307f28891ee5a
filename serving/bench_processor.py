"""`thinkcap bench processor`: decode throughput with the think-budget processor vs none vs vLLM's
built-in thinking budget, measured side by side in one process on the vLLM CPU engine.

Two in-process engines on the same model:
- `plain`: vanilla vLLM, no custom logits processor at all (the entry point is hidden from it);
- `thinkcap`: built like our server (entry point + `logits_processors=`) plus a reasoning config,
  so vLLM's built-in `thinking_token_budget` works in it too.
Every case decodes the same batch (greedy, `ignore_eos`, so every row emits exactly
`--max-tokens` tokens); only the budget arguments differ. Runs alternate between cases and the
median of `--runs` is reported, so drift on a shared machine hits every case alike.
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
    tok_per_s: list[float] = field(default_factory=list)


def ours(budget: int | None) -> dict[str, Any]:
    return {"extra_args": {"think_budget": budget}} if budget is not None else {}


def builtin(budget: int | None) -> dict[str, Any]:
    return {"thinking_token_budget": budget} if budget is not None else {}


def mixed_budget(row: int, max_tokens: int) -> int | None:
    """Half the rows unbudgeted, a quarter forced mid-way (at varied points), a quarter never."""
    if row % 2 == 0:
        return None
    if row % 4 == 1:
        return max_tokens // 4 + row % (max_tokens // 2)
    return HUGE_BUDGET


def make_cases() -> list[Case]:
    return [
        Case("none", "plain", "vanilla vLLM, no custom processor", lambda r, m: {}),
        Case("ours-idle", "thinkcap", "our processor loaded, no request budgeted", lambda r, m: {}),
        Case("ours-all", "thinkcap", "ours, every row budgeted, none forced", lambda r, m: ours(HUGE_BUDGET)),
        Case("builtin-all", "thinkcap", "vLLM built-in, every row budgeted, none forced", lambda r, m: builtin(HUGE_BUDGET)),
        Case("ours-mixed", "thinkcap", "ours, 1/2 none, 1/4 forced, 1/4 never", lambda r, m: ours(mixed_budget(r, m))),
        Case("builtin-mixed", "thinkcap", "built-in, same mix", lambda r, m: builtin(mixed_budget(r, m))),
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


def build_engines(model: Path, batch: int, max_tokens: int) -> dict[str, Any]:
    from vllm import LLM
    from vllm.config import ReasoningConfig

    from serving.engine_args import prepare_engine_env, processor_kwargs

    prepare_engine_env()
    common = dict(model=str(model), enforce_eager=True, max_model_len=max_tokens + 128, max_num_seqs=batch, seed=0)
    reasoning = ReasoningConfig(reasoning_start_str="<think>", reasoning_end_str="</think><answer>")
    with entry_points_hidden():
        plain = LLM(**common)
    thinkcap = LLM(**common, reasoning_config=reasoning, **processor_kwargs())
    assert owning_processors(plain) == 0 and owning_processors(thinkcap) == 1
    return {"plain": plain, "thinkcap": thinkcap}


def owning_processors(llm) -> int:
    """How many think-budget processors do the work in this (in-process) engine."""
    from serving.vllm_processor import ThinkBudgetLogitsProcessor

    def count(worker) -> int:
        procs = worker.model_runner.input_batch.logitsprocs.all
        return sum(isinstance(p, ThinkBudgetLogitsProcessor) and p.owner for p in procs)

    return sum(llm.collective_rpc(count))


def prompts_for(llm, batch: int) -> list[dict[str, list[int]]]:
    """Short distinct chat prompts that leave `<think>` open, so decode dominates the run."""
    tok = llm.get_tokenizer()
    out = []
    for i in range(batch):
        chat = [{"role": "user", "content": f"Question {i}: what is {i} + {i * 7 % 13}?"}]
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) + "<think>"
        out.append({"prompt_token_ids": tok.encode(text, add_special_tokens=False)})
    return out


def run_once(llm, prompts: list, case: Case, max_tokens: int) -> float:
    from vllm import SamplingParams

    params = [
        SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True, **case.budget_of_row(i, max_tokens))
        for i in range(len(prompts))
    ]
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - start
    n_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    assert n_tokens == max_tokens * len(prompts), "every row must decode exactly max_tokens"
    return n_tokens / elapsed


def report(cases: list[Case], batch: int, max_tokens: int, runs: int) -> str:
    base = statistics.median(cases[0].tok_per_s)
    lines = [
        f"decode throughput, batch {batch}, {max_tokens} tokens/row, median of {runs} alternating runs",
        f"{'case':<14} {'tok/s':>9} {'vs none':>8}  what",
    ]
    for case in cases:
        med = statistics.median(case.tok_per_s)
        lines.append(f"{case.name:<14} {med:>9.0f} {med / base:>7.3f}x  {case.what}")
    ours_all, builtin_all = (statistics.median(c.tok_per_s) for c in cases[2:4])
    lines.append(f"ours-all / builtin-all = {ours_all / builtin_all:.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="thinkcap bench processor", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the tiny model)")
    parser.add_argument("--batch", type=int, default=64, help="concurrent requests per run (default 64)")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens decoded per row (default 128)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case (default 5)")
    args = parser.parse_args(argv)
    for name in ("batch", "max_tokens", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # In-process engines, one thread each (the machine is shared), a small CPU KV cache.
    for key, value in {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}.items():
        os.environ.setdefault(key, value)
    if args.model is None:
        from thinkcap.tiny_model import ensure_tiny_model

        args.model = ensure_tiny_model()
    engines = build_engines(args.model, args.batch, args.max_tokens)
    prompts = prompts_for(engines["plain"], args.batch)
    cases = make_cases()
    for case in cases:  # warm-up, not measured
        run_once(engines[case.engine], prompts, case, args.max_tokens)
    for _ in range(args.runs):
        for case in cases:
            case.tok_per_s.append(run_once(engines[case.engine], prompts, case, args.max_tokens))
    print(report(cases, args.batch, args.max_tokens, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
