"""`thinkcap bench learning --arms budget`: train for the budgets you serve.

On the running-sum task (tasks/running_sums.py: thinking pays, the thought is the computation), a
tiny GLM-4.1V gets a cold-start SFT on correct worked thoughts, then three GRPO arms run from it with
the same seeds, steps, prompts and samples:

    (a) fixed budget with forced answering      rollout_think_budget = B
    (b) budget-aware GRPO                       a budget per sample drawn from --choices, advantages
                                                normalised within same-budget samples of a group
    (c) fixed budget, truncation, reward 0      forced_answering = false

Each policy (and the SFT model) is then scored on held-out records at thinking budgets
{0, 4, 8, 16, 32, full}: the answer is forced at the budget as `thinkcap serve` forces it. Writes
OUT/results.json, OUT/budget_curve.png and each run's folder; prints the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from scoring.stats import runs_interval

ARMS = {
    "a: fixed budget, forced answering": {"forced_answering": True},
    "b: budget-aware GRPO (drawn budgets)": {"budget_aware_advantages": True, "rollout_budget_per": "sample"},
    "c: fixed budget, truncation → 0": {"forced_answering": False},
}
SFT = "SFT cold start (before GRPO)"
SFT_BATCH = 32


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="thinkcap bench learning --arms budget", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_budgets", help="output folder (default runs/bench_budgets)")
    p.add_argument("--quick", action="store_true", help="1 seed, 12 steps, smaller sets: a few minutes on 2 cores")
    p.add_argument("--seeds", type=int, default=3, help="GRPO seeds per arm, one SFT model (default 3)")
    p.add_argument("--steps", type=int, default=30, help="GRPO steps per run (default 30)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    p.add_argument("--group", type=int, default=8, help="samples per prompt (default 8)")
    # Below the full thought (12-24 tokens) so the budget binds in training: at 32 no sample reaches
    # it and arms (a) and (c) are the same run (measured: identical to the last digit).
    p.add_argument("--budget", type=int, default=16, help="training budget of arms (a) and (c) (default 16)")
    p.add_argument("--choices", default="0,4,8,16", help="budgets drawn by arm (b) (default 0,4,8,16)")
    p.add_argument("--eval-budgets", default="0,4,8,16,32,full", help="held-out budgets (default 0,4,8,16,32,full)")
    p.add_argument("--lr", type=float, default=2e-4, help="GRPO learning rate (default 2e-4)")
    p.add_argument("--n", type=int, default=2000, help="training records (default 2000)")
    p.add_argument("--held-out", type=int, default=200, help="held-out records (default 200)")
    p.add_argument("--sft-steps", type=int, default=1000, help="cold-start SFT steps (default 1000)")
    p.add_argument("--sft-lr", type=float, default=3e-3, help="cold-start SFT learning rate (default 3e-3)")
    p.add_argument("--short-thoughts", type=float, default=0.5, help="share of cold-start thoughts written short "
                   "(`a3 b8 c10`, 2 tokens a step, less accurate) instead of `a3=3 b5=8 c2=10` (4 tokens a step): "
                   "the choice GRPO can make under a budget (default 0.5)")
    p.add_argument("--sft-model", default="", help="skip SFT and start the arms from this model folder (without it "
                                                   "OUT/sft is reused when an earlier run made it with the same settings)")
    p.add_argument("--engine", default="auto", choices=("auto", "vllm", "hf"), help="rollout engine")
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; a flag given explicitly (even at its default value) wins
        given = {a.dest for a in p._actions for flag in a.option_strings if flag in (argv or [])}
        quick = {"seeds": 1, "steps": 12, "held_out": 100}
        for key, value in quick.items():
            if key not in given:
                setattr(args, key, value)
    return args


def cold_start(args: argparse.Namespace, data: Path, sft_dir: Path) -> str:
    """SFT on worked thoughts, or OUT/sft as an earlier run left it when made with the same settings
    (the marker file names them), so a second `--quick` run skips the slowest part."""
    from tasks.records import load_records
    from training.sft import warm_up
    from training.train import resolve_model

    settings = {"n": args.n, "sft_steps": args.sft_steps, "sft_lr": args.sft_lr, "short_thoughts": args.short_thoughts,
                "batch_size": SFT_BATCH, "version": 2}
    marker = sft_dir / "bench_sft.json"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        print(f"cold start: reusing {sft_dir} (same data and SFT settings)")
        return str(sft_dir)
    warm_up(resolve_model("tiny"), load_records(data), sft_dir, steps=args.sft_steps, batch_size=SFT_BATCH,
            lr=args.sft_lr, short_thoughts=args.short_thoughts, lr_schedule="cosine", progress=True)
    marker.write_text(json.dumps(settings) + "\n")
    return str(sft_dir)


def eval_budgets(text: str) -> list[int | None]:
    return [None if b.strip() == "full" else int(b) for b in text.split(",")]


def score(engine: Any, policy: Any, records: list, model_dir: str, budgets: list[int | None],
          cfg: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Held-out accuracy and mean thinking tokens per budget; greedy on vLLM, 4 samples at temperature
    1 on HF generate."""
    from benches.held_out import evaluate
    from training.rollout.samples import HFEngine

    sampled = isinstance(engine, HFEngine)  # HF generate cannot sample at temperature 0
    got = {"full" if b is None else str(b): evaluate(engine, policy, records, model_dir, b, cfg,
                                                     samples=4 if sampled else 1, temperature=1.0 if sampled else 0.0)
           for b in budgets}
    return {b: r["accuracy"] for b, r in got.items()}, {b: r["think_tokens"] for b, r in got.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from training.config import GRPOConfig
    from tasks.records import load_records
    from training.learner.policy import load_policy
    from tasks.running_sums import make_arith_dataset
    from training.train import train

    out = Path(args.out)
    t0 = time.monotonic()
    data = make_arith_dataset(out / "data", n=args.n, seed=0)
    held_out = load_records(make_arith_dataset(out / "held_out", n=args.held_out, seed=1))
    warm = args.sft_model or cold_start(args, data, out / "sft")
    sft_s = time.monotonic() - t0
    budgets = eval_budgets(args.eval_budgets)
    max_new_tokens = max([args.budget] + [int(c) for c in args.choices.split(",")]) + 40
    engine, evals, thinks, runs = None, {}, {}, {}
    for label, overrides in ARMS.items():
        for seed in range(args.seeds):
            run_dir = out / f"arm-{label[0]}-seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            drawn = {"rollout_budget_choices": args.choices} if overrides.get("budget_aware_advantages") else {}
            cfg = GRPOConfig(
                model=warm, train_data=str(data), output_dir=str(run_dir), seed=seed, steps=args.steps,
                prompts_per_step=args.prompts, group_size=args.group, num_minibatches=2, lr=args.lr,
                rollout_engine=args.engine, max_new_tokens=max_new_tokens, rollout_think_budget=args.budget,
                answer_reserve=16, save_every=0, resume=False, progress_bar=False, **overrides, **drawn)
            start = time.monotonic()
            result = train(cfg, engine=engine)
            engine = result["engine"]  # one engine for every run: each run loads its own weights into it
            seconds = time.monotonic() - start
            for name, policy in ([(SFT, load_policy(warm))] if not evals else []) + [(label, result["policy"])]:
                acc, think = score(engine, policy, held_out, warm, budgets, cfg)
                evals.setdefault(name, []).append(acc)
                thinks.setdefault(name, []).append(think)
            runs.setdefault(label, []).append({"seconds": seconds, "checkpoint": str(result["checkpoint"]),
                                               "reward_last": result["history"][-1]["reward/mean"]})
    summary = {"args": vars(args), "sft_seconds": sft_s, "total_seconds": time.monotonic() - t0, "runs": runs,
               "accuracy": {label: {b: runs_interval([e[b] for e in es], args.held_out) for b in es[0]}
                            for label, es in evals.items()},
               "think_tokens": {label: {b: sum(t[b] for t in ts) / len(ts) for b in ts[0]} for label, ts in thinks.items()},
               "per_seed": evals}
    summary["plot"] = str(plot_curves(summary["accuracy"], out / "budget_curve.png", args))
    summary["best_policy"] = str(export_best(evals, runs, out / "best-policy"))
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary, args)
    return 0


def export_best(evals: dict[str, list[dict[str, float]]], runs: dict[str, list[dict[str, Any]]], dest: Path) -> Path:
    """Copy the final policy of the run with the highest held-out accuracy averaged over the test budgets
    to OUT/best-policy: a fixed path the README's serve / eval / demo commands can name."""
    label, seed = max(((lab, i) for lab in runs for i in range(len(runs[lab]))),
                      key=lambda k: sum(evals[k[0]][k[1]].values()) / len(evals[k[0]][k[1]]))
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(Path(runs[label][seed]["checkpoint"]) / "policy", dest)
    (dest / "bench_source.json").write_text(json.dumps({"arm": label, "seed": seed, **runs[label][seed]}) + "\n")
    return dest


def plot_curves(acc: dict[str, dict[str, tuple[float, float]]], path: Path, args: argparse.Namespace) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, per_budget in acc.items():
        keys = list(per_budget)
        xs = range(len(keys))
        means = [per_budget[k][0] for k in keys]
        yerr = [[m - per_budget[k][1] for m, k in zip(means, keys)], [per_budget[k][2] - m for m, k in zip(means, keys)]]
        ax.errorbar(xs, means, yerr=yerr, capsize=3, marker="o", label=label,
                    linestyle="--" if label == SFT else "-")
        ax.set_xticks(list(xs), keys)
    ax.set_xlabel("thinking budget at test time (tokens; answer forced there)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"running sum, tiny GLM-4.1V: {args.seeds} seed(s), {args.steps} GRPO steps, 95% intervals")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_table(summary: dict[str, Any], args: argparse.Namespace) -> None:
    acc = summary["accuracy"]
    keys = list(next(iter(acc.values())))
    print(f"\nSFT {args.sft_steps} steps ({summary['sft_seconds']:.0f} s); GRPO {args.steps} steps x {args.prompts} x "
          f"{args.group}, {args.seeds} seed(s); held-out {args.held_out} records; total {summary['total_seconds']:.0f} s")
    print(f"{'held-out accuracy at budget (95% interval)':<44}" + "".join(f"{k:>20}" for k in keys) + "  think@full")
    for label, per in acc.items():
        print(f"{label:<44}" + "".join(f"{per[k][0]:>7.3f} [{per[k][1]:.3f},{per[k][2]:.3f}]" for k in keys)
              + f"{summary['think_tokens'][label][keys[-1]]:>12.1f}")
    print(f"plot: {summary['plot']}")
    print(f"best run's policy (serve it: thinkcap serve {summary['best_policy']}): "
          f"{json.loads(Path(summary['best_policy'], 'bench_source.json').read_text())['arm']}")
