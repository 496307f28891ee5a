"""`thinkcap bench learning`: does GRPO raise the reward on the synthetic task, and what does
forced answering change? Two runs from the same warmed-up tiny model, same seeds and settings:

- forced answering on: at the rollout budget `</think><answer>` is forced and the sample answers;
- forced answering off: a sample still thinking at the budget is cut there and gets reward 0.

Writes OUT/reward_curve.png (both runs), OUT/results.json and each run's folder (metrics.jsonl,
TensorBoard, checkpoints), and prints a summary table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

RUNS = {"forced answering on": True, "forced answering off (cut → reward 0)": False}


def _mean(history: list[dict[str, Any]], key: str, first: bool, n: int) -> float:
    rows = history[:n] if first else history[-n:]
    return sum(h[key] for h in rows) / len(rows)


def mean_history(histories: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Step-wise mean over seeds of every metric all runs logged at that step."""
    out = []
    for rows in zip(*histories):
        keys = set.intersection(*(set(r) for r in rows))
        out.append({k: sum(r[k] for r in rows) / len(rows) for k in sorted(keys)})
    return out


def summarize_run(history: list[dict[str, Any]]) -> dict[str, float]:
    """Means over the first and last quarter (at most 5 steps) of a run."""
    k = max(1, min(5, len(history) // 4))
    keys = {"reward": "reward/mean", "truncated": "rollout/truncated_rate", "think_len": "rollout/think_len",
            "forced": "rollout/forced_rate"}
    return {f"{name}_{when}": _mean(history, key, when == "first", k)
            for name, key in keys.items() for when in ("first", "last")}


def main(argv: list[str] | None = None) -> int:
    # `--arms budget`: the budget-aware comparison (benches/budgets.py) with its own flags.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--arms", choices=("forced", "budget"), default="forced")
    known, rest = pre.parse_known_args(argv)
    if known.arms == "budget":
        from benches.budgets import main as budget_main

        return budget_main(rest)
    parser = argparse.ArgumentParser(prog="thinkcap bench learning", description=__doc__.splitlines()[0])
    parser.add_argument("--arms", choices=("forced", "budget"), default="forced",
                        help="forced: forced answering on vs off (this benchmark); budget: fixed-budget vs "
                             "budget-aware GRPO vs truncation on a task where thinking pays "
                             "(`--arms budget --help`)")
    parser.add_argument("--out", default="runs/bench_learning", help="output folder (default runs/bench_learning)")
    parser.add_argument("--steps", type=int, default=60, help="GRPO steps per run (default 60)")
    parser.add_argument("--seeds", type=int, default=3, help="RL seeds per setting, same warm-up (default 3)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt (default 8)")
    parser.add_argument("--budget", type=int, default=32, help="rollout thinking budget (default 32)")
    parser.add_argument("--lr", type=float, default=5e-4, help="GRPO learning rate (default 5e-4)")
    parser.add_argument("--n", type=int, default=300, help="synthetic training records (default 300)")
    parser.add_argument("--held-out", type=int, default=120, help="synthetic held-out records (default 120)")
    parser.add_argument("--warmup-steps", type=int, default=150, help="supervised format warm-up steps (default 150)")
    parser.add_argument("--engine", default="auto", choices=("auto", "vllm", "hf"), help="rollout engine")
    args = parser.parse_args(argv)

    from benches.held_out import evaluate
    from training.config import GRPOConfig
    from tasks.records import load_records
    from training.learner.policy import load_policy
    from training.sft import warm_up
    from training.sft_config import SFTConfig
    from tasks.synthetic import make_dataset
    from training.tracking import plot_rewards
    from training.train import train

    out = Path(args.out)
    t0 = time.monotonic()
    data = make_dataset(out / "data", n=args.n, seed=0)
    held_out = load_records(make_dataset(out / "held_out", n=args.held_out, seed=1))
    # Long templated thoughts (2-10 sentences, ~16-90 tokens) against a 32-token budget: many
    # samples reach the budget, which is where the two settings differ.
    warm = str(warm_up(SFTConfig(model="tiny", train_data=str(data), output_dir=str(out / "warm"),
                                 steps=args.warmup_steps, progress_bar=False)))
    warm_s = time.monotonic() - t0
    max_new_tokens = args.budget + 40
    engine, runs, evals = None, {}, {}
    for label, forced in RUNS.items():
        runs[label] = []
        for seed in range(args.seeds):
            run_dir = out / f"{'forced_on' if forced else 'forced_off'}-seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = GRPOConfig(
                model=warm, train_data=str(data), output_dir=str(run_dir), seed=seed, steps=args.steps,
                prompts_per_step=args.prompts, group_size=args.group, num_minibatches=2, lr=args.lr,
                rollout_engine=args.engine, max_new_tokens=max_new_tokens, rollout_think_budget=args.budget,
                answer_reserve=24, forced_answering=forced, save_every=0, resume=False)
            start = time.monotonic()
            result = train(cfg, engine=engine)
            engine = result["engine"]  # one engine for every run: each run loads its own weights into it
            seconds = time.monotonic() - start
            if not evals:
                evals["warm-up model (before GRPO)"] = [evaluate(engine, load_policy(warm), held_out, warm,
                                                                 args.budget, cfg)]
            evals.setdefault(label, []).append(evaluate(engine, result["policy"], held_out, warm, args.budget, cfg))
            runs[label].append({"seconds": seconds, "history": result["history"]})
    curves = {label: mean_history([r["history"] for r in rs]) for label, rs in runs.items()}
    plot = plot_rewards(curves, out / "reward_curve.png", keys=("reward/mean", "rollout/think_len"),
                        title=f"GRPO, tiny GLM-4.1V, synthetic task, budget {args.budget} (mean of {args.seeds} seeds)")
    summary = {
        "args": vars(args), "warmup_seconds": warm_s, "plot": str(plot),
        "runs": {label: {"mean": summarize_run(curves[label]),
                         "per_seed": [summarize_run(r["history"]) | {"seconds": r["seconds"]} for r in rs]}
                 for label, rs in runs.items()},
        "held_out": {label: {"mean": {k: sum(e[k] for e in es) / len(es) for k in es[0]}, "per_seed": es}
                     for label, es in evals.items()},
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary, args)
    return 0


def print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nwarm-up: {args.warmup_steps} supervised steps in {summary['warmup_seconds']:.0f} s; GRPO: {args.steps} "
          f"steps x {args.prompts} prompts x {args.group} samples, think budget {args.budget}, {args.seeds} seeds\n")
    print(f"{'training reward (mean of seeds)':<40} {'first → last':>16} {'last per seed':>22} {'truncated':>12} "
          f"{'think len':>12} {'s/run':>6}")
    for label, r in summary["runs"].items():
        m, per = r["mean"], r["per_seed"]
        seeds = " ".join(f"{p['reward_last']:.2f}" for p in per)
        secs = sum(p["seconds"] for p in per) / len(per)
        print(f"{label:<40} {m['reward_first']:>6.3f} → {m['reward_last']:<6.3f} {seeds:>22} "
              f"{m['truncated_first']:>4.2f} → {m['truncated_last']:<4.2f} {m['think_len_first']:>4.1f} → "
              f"{m['think_len_last']:<5.1f} {secs:>5.0f}")
    print(f"\nheld-out accuracy ({args.held_out} new records x 4 samples, forced answering at budget {args.budget}):")
    for label, e in summary["held_out"].items():
        m = e["mean"]
        tasks = "  ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in m.items() if "/" in k)
        seeds = " ".join(f"{x['accuracy']:.3f}" for x in e["per_seed"])
        print(f"  {label:<40} {m['accuracy']:.3f}  [{seeds}]  ({tasks})")
    print(f"\n(first/last: mean over the first/last 5 steps)  plot: {summary['plot']}")
