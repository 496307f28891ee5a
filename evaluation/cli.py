"""`thinkcap eval DATA --budgets 0,16,64,256,unlimited`: accuracy against thinking budget on any
OpenAI-compatible server.

DATA is a JSONL in the training record format (`thinkcap train --make-data DIR` writes one; bring
VQA data with `thinkcap eval convert`), or use `--synthetic N` for a fresh held-out synthetic set.
Writes into --out: responses.jsonl (every response; a rerun sends only what is missing),
summary.csv / summary.json (per budget and per domain) and three PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from evaluation.budgets import BUDGET_PARAMS, parse_budgets
from evaluation.client import RequestRefused
from evaluation.runner import RunConfig

SYNTHETIC_SEED = 12345  # not 0, the seed `thinkcap train --make-data` uses: a held-out set


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkcap eval", description=__doc__.split("\n\n")[0],
                                epilog="`thinkcap eval convert --help`: VQA JSONL/CSV into the record format.")
    p.add_argument("data", nargs="?", type=Path, help="JSONL in the training record format")
    p.add_argument("--synthetic", type=int, metavar="N", help="evaluate N fresh synthetic records instead of DATA")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible base URL (default %(default)s)")
    p.add_argument("--model", help="model id (default: the first one the server lists)")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "EMPTY"), help="bearer key (env OPENAI_API_KEY)")
    p.add_argument("--budgets", default="0,16,64,256,unlimited", help="comma-separated budgets (default %(default)s)")
    p.add_argument("--budget-param", default="think_budget", choices=BUDGET_PARAMS,
                   help="request field for the budget: think_budget (thinkcap), thinking_token_budget (vLLM's "
                        "server, needs --reasoning-config there), reasoning_effort (budgets low,medium,high)")
    p.add_argument("--samples", type=int, default=1, help="samples per item and budget: pass@1 is their mean, pass@K reported")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=1024, help="max_tokens per request (default %(default)s)")
    p.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy); > 0 needed for --samples > 1")
    p.add_argument("--top-p", type=float, help="top_p per request (default: the server's)")
    p.add_argument("--seed", type=int, help="seed per request (seed + sample index: the same draw at every budget)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default %(default)s)")
    p.add_argument("--grace", type=int, metavar="N",
                   help="think_budget_grace on every request: up to N tokens past the budget to a natural close "
                        "(default: not sent, the server's --think-budget-grace)")
    p.add_argument("--budget-message", metavar="TEXT",
                   help="think_budget_message on every request: wrap-up text forced before the close "
                        "(default: not sent, the server's --think-budget-message)")
    p.add_argument("--extra-body", type=json.loads, default={}, help="JSON merged into every request body")
    p.add_argument("--ladder", action="store_true",
                   help="one thought per item and sample, cut at every budget with the answer forced at each cut "
                        "(budget.cuts; needs thinkcap serve); writes responses_ladder.jsonl and reports the tokens "
                        "generated. Exact for greedy decoding and seeded sampling without a budget hint")
    p.add_argument("--limit", type=int, help="evaluate only the first N records")
    p.add_argument("--domains", help="comma-separated domains to keep (e.g. counting,numeric)")
    p.add_argument("--out", type=Path, default=Path("eval_out"), help="output folder (default %(default)s)")
    p.add_argument("--title", help="plot title (default: the model id)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def dataset_path(args: argparse.Namespace) -> Path:
    if (args.data is None) == (args.synthetic is None):
        raise ValueError("give DATA (a JSONL) or --synthetic N, not both and not neither")
    if args.data is not None:
        return args.data
    if args.synthetic < 1:
        raise ValueError(f"--synthetic must be >= 1, got {args.synthetic}")
    from tasks.synthetic import make_dataset

    return make_dataset(args.out / "synthetic", n=args.synthetic, seed=SYNTHETIC_SEED)


def format_table(rows: list[dict[str, Any]], k: int) -> str:
    cols = [("budget", "{}"), ("domain", "{}"), ("items", "{}"), ("responses", "{}"), ("accuracy", "{:.3f}"),
            ("ci95_low", "{:.3f}"), ("ci95_high", "{:.3f}"), (f"pass@{k}", "{:.3f}"),
            ("mean_thinking_tokens", "{:.1f}"), ("forced_rate", "{:.2f}"), ("mean_overshoot", "{:.2f}"),
            ("empty_answer_rate", "{:.2f}"),
            ("format_valid_rate", "{:.2f}"), ("mean_latency_s", "{:.2f}"), ("mean_tokens_per_s", "{:.1f}"),
            ("error_rate", "{:.2f}")]
    cells = [[("n/a" if isinstance(r[c], float) and math.isnan(r[c]) else f.format(r[c])) for c, f in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, (c, _) in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for (c, _), w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from evaluation.dataset import load_items
    from evaluation.report import write_plots, write_table
    from evaluation.runner import run_sweep
    from scoring.stats import table

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    cfg = RunConfig(base_url=args.base_url, model=args.model, api_key=args.api_key, budget_param=args.budget_param,
                    samples=args.samples, concurrency=args.concurrency, max_tokens=args.max_tokens,
                    temperature=args.temperature, top_p=args.top_p, seed=args.seed, timeout_s=args.timeout,
                    grace=args.grace, budget_message=args.budget_message, extra_body=args.extra_body)
    budgets = parse_budgets(args.budgets, cfg.budget_param)
    domains = set(args.domains.split(",")) if args.domains else None
    data = dataset_path(args)
    items = load_items(data, limit=args.limit, domains=domains)
    start = time.perf_counter()
    generated = None
    if args.ladder and (cfg.grace is not None or cfg.budget_message is not None):
        raise ValueError("--grace and --budget-message do not apply to --ladder: it cuts each thought itself")
    if args.ladder:
        from evaluation.ladder import run_ladder

        rows, generated = asyncio.run(run_ladder(cfg, items, budgets))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "responses_ladder.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        rows = asyncio.run(run_sweep(cfg, items, budgets, args.out / "responses.jsonl", progress=not args.no_progress))
        generated = sum(r.get("completion_tokens") or 0 for r in rows)
    wanted = {i.id for i in items}
    labels = [b.label for b in budgets]
    rows = [r for r in rows if r["item_id"] in wanted and r["budget"] in labels and r["sample"] < cfg.samples]
    summary = table(rows, labels, cfg.samples)
    if all(r.get("error") for r in rows):
        raise RequestRefused("no request succeeded; see the error field in responses.jsonl")
    meta = {"data": str(data), "items": len(items), "budgets": labels, "samples": cfg.samples,
            "base_url": cfg.base_url, "model": cfg.model, "budget_param": cfg.budget_param,
            "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
            "grace": cfg.grace, "budget_message": cfg.budget_message,
            "wall_s_this_run": round(time.perf_counter() - start, 2), "ladder": args.ladder,
            "tokens_generated": generated}
    csv_path, json_path = write_table(summary, args.out, meta)
    print(format_table(summary, cfg.samples))
    print(f"generated {generated} tokens in {meta['wall_s_this_run']} s ({'ladder' if args.ladder else 'per-budget sweep'})")
    print(f"wrote {csv_path}, {json_path}, {args.out / ('responses_ladder.jsonl' if args.ladder else 'responses.jsonl')}")
    if not args.no_plots:
        plots = write_plots(summary, budgets, args.out, args.title or cfg.model)
        print("plots: " + ", ".join(str(p) for p in plots))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "convert":
        from tasks.convert import main as convert_main

        return convert_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RequestRefused) as exc:
        print(f"thinkcap eval: {exc}", file=sys.stderr)
        return 2
