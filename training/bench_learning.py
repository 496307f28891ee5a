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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkcap bench learning", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_learning", help="output folder (default runs/bench_learning)")
    parser.add_argument("--steps", type=int, default=40, help="GRPO steps per run (default 40)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt (default 8)")
    parser.add_argument("--budget", type=int, default=32, help="rollout thinking budget (default 32)")
    parser.add_argument("--lr", type=float, default=2e-4, help="GRPO learning rate (default 2e-4)")
    parser.add_argument("--n", type=int, default=300, help="synthetic records (default 300)")
    parser.add_argument("--warmup-steps", type=int, default=150, help="supervised format warm-up steps (default 150)")
    parser.add_argument("--answer-noise", type=float, default=0.0,
                        help="share of warm-up demonstrations with a random answer (default 0)")
    parser.add_argument("--engine", default="auto", choices=("auto", "vllm", "hf"), help="rollout engine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from training.config import GRPOConfig
    from training.data import load_records
    from training.sft import warm_up
    from training.synthetic import make_dataset
    from training.tracking import plot_rewards
    from training.train import resolve_model, train

    out = Path(args.out)
    t0 = time.monotonic()
    data = make_dataset(out / "data", n=args.n, seed=args.seed)
    # Long templated thoughts (2-10 sentences, ~16-90 tokens) against a 32-token budget: many
    # samples reach the budget, which is where the two runs differ.
    warm = warm_up(resolve_model("tiny"), load_records(data), out / "warm", steps=args.warmup_steps, batch_size=16,
                   lr=1e-2, think_sentences=(2, 10), answer_noise=args.answer_noise, seed=args.seed)
    warm_s = time.monotonic() - t0
    engine, results = None, {}
    for label, forced in RUNS.items():
        run_dir = out / ("forced_on" if forced else "forced_off")
        shutil.rmtree(run_dir, ignore_errors=True)
        cfg = GRPOConfig(
            model=str(warm), train_data=str(data), output_dir=str(run_dir), seed=args.seed, steps=args.steps,
            prompts_per_step=args.prompts, group_size=args.group, num_minibatches=2, lr=args.lr,
            rollout_engine=args.engine, max_new_tokens=args.budget + 40, rollout_think_budget=args.budget,
            answer_reserve=24, forced_answering=forced, save_every=0, resume=False)
        start = time.monotonic()
        result = train(cfg, engine=engine)
        engine = result["engine"]  # one engine for both runs: the trainer loads each run's weights
        history = result["history"]
        k = max(1, min(5, len(history) // 4))
        results[label] = {
            "seconds": time.monotonic() - start, "history": history,
            **{f"{name}_{when}": _mean(history, key, when == "first", k)
               for name, key in (("reward", "reward/mean"), ("accuracy", "reward/accuracy"),
                                 ("truncated", "rollout/truncated_rate"), ("think_len", "rollout/think_len"),
                                 ("forced", "rollout/forced_rate"))
               for when in ("first", "last")},
        }
    plot = plot_rewards({label: r["history"] for label, r in results.items()}, out / "reward_curve.png",
                        title=f"GRPO on the synthetic task (tiny GLM-4.1V, budget {args.budget})")
    summary = {"args": vars(args), "warmup_seconds": warm_s, "plot": str(plot),
               "runs": {label: {k: v for k, v in r.items() if k != "history"} for label, r in results.items()}}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\nwarm-up: {args.warmup_steps} supervised steps in {warm_s:.0f} s; GRPO: {args.steps} steps x "
          f"{args.prompts} prompts x {args.group} samples, think budget {args.budget}\n")
    print(f"{'run':<40} {'reward first→last':>18} {'accuracy':>14} {'truncated':>12} {'think len':>12} {'time':>7}")
    for label, r in summary["runs"].items():
        print(f"{label:<40} {r['reward_first']:>8.3f} → {r['reward_last']:<6.3f} "
              f"{r['accuracy_first']:>5.3f} → {r['accuracy_last']:<5.3f} {r['truncated_first']:>4.2f} → "
              f"{r['truncated_last']:<4.2f} {r['think_len_first']:>4.1f} → {r['think_len_last']:<5.1f} "
              f"{r['seconds']:>5.0f} s")
    print(f"\n(first/last = mean over the first/last {k} steps)  plot: {plot}")
    return 0
