"""`thinkcap bench learning --arms budget`: train for the budgets you serve.

On the running-sum task (tasks/running_sums.py: thinking pays, the thought is the computation), a
tiny GLM-4.1V gets a cold-start SFT on correct worked thoughts, then three GRPO arms run from it with
the same seeds, steps, prompts and samples:

    (a) fixed budget with forced answering      rollout_think_budget = B
    (b) budget-aware GRPO                       a budget per sample drawn from --choices, advantages
                                                normalised within same-budget samples of a group
    (c) fixed budget, truncation, reward 0      forced_answering = false
    (d) budget-conditioned GRPO                 a budget per prompt group drawn from the whole test ladder
                                                (--ladder-choices), budget-aware advantages, and a
                                                penalty for a thought the budget cut (--forced-close-penalty)
    (e) anytime (AnytimeReasoner)               thoughts at the largest ladder budget, each also cut at the
                                                smaller test budgets and answered there (--anytime-cuts);
                                                credit from every cut (GRPOConfig.anytime_cuts; opt-in:
                                                --only abcde)

With `--hint` (the default) the model is told its budget in the prompt (`budget.hint`, the function
`thinkcap serve` uses): the cold start shows a budget drawn from the ladder on every example, drawn
independently of the thought's form, so the SFT model writes either form under any hint and RL has
to learn which form fits which budget; every arm trains and is scored with the hint of its budget.
GRPO draws its prompts from records the cold start never saw (`--rl-prompts fresh`, the default): on
the SFT set itself both forms score alike at every budget they fit (the answers are memorised), which
hides from RL the very accuracy difference between the forms it has to learn. Training logs each
form's share and accuracy per budget (`budget/B/{short,long}_{share,accuracy}` in metrics.jsonl).

Each policy (and the SFT model) is then scored on held-out records at thinking budgets
{0, 4, 8, 12, 16, 20, 32, full}: the answer is forced at the budget as `thinkcap serve` forces it.
Reported: accuracy per budget, the area under the accuracy-vs-budget curve (AUC, budgets 0..full,
normalised to [0, 1]), the share of short-form thoughts per budget. Writes OUT/results.json,
OUT/budget_curve.png and each run's folder (every exported policy records its hint); prints the table.
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
    # One budget per prompt group: with 7 ladder budgets and 8 samples, a budget per sample leaves
    # same-budget subgroups of one or two samples, whose advantages are 0 (measured: no signal).
    "d: budget-conditioned GRPO (hint, ladder)": {"budget_aware_advantages": True, "rollout_budget_per": "group"},
    "e: anytime (answers at cuts of one thought)": {},
}
DEFAULT_HINT = "Think for at most {budget} tokens."
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
    p.add_argument("--eval-budgets", default="0,4,8,12,16,20,32,full",
                   help="held-out budgets (default 0,4,8,12,16,20,32,full)")
    p.add_argument("--ladder-choices", default="0,4,8,12,16,20,32",
                   help="budgets drawn by arm (d); 'full' = a request's budget without one, what max_new_tokens leaves "
                        "(the held-out 'full' column; the hint shows that number) (default 0,4,8,12,16,20,32)")
    p.add_argument("--forced-close-penalty", type=float, default=0.25,
                   help="arm (d): reward subtracted when the budget cut the thought (default 0.25)")
    p.add_argument("--hint", default=DEFAULT_HINT, help=f"budget hint template, or 'off' (default {DEFAULT_HINT!r})")
    p.add_argument("--only", default="abcd", help="which arms to run, by letter (default abcd)")
    p.add_argument("--lr", type=float, default=2e-4, help="GRPO learning rate (default 2e-4)")
    p.add_argument("--temperature", type=float, default=1.0, help="rollout sampling temperature of every arm (default 1.0)")
    p.add_argument("--rl-prompts", choices=("fresh", "sft"), default="fresh",
                   help="GRPO prompts: fresh = records the cold start never saw (seed 2; default), sft = the SFT "
                        "set itself. On the SFT set both forms score alike at every budget that fits them (the "
                        "cold start memorised those answers: 0.93 vs 0.93 at budget 32), so RL cannot see that "
                        "the long form is the accurate one")
    p.add_argument("--budget-per", choices=("group", "sample"), default="group",
                   help="arm (d): one drawn budget per prompt group (default) or per sample (stratified: with "
                        "--ladder-choices 8,32 and 8 samples, 4 of each per prompt, so one prompt's samples "
                        "differ only in the hint they were shown)")
    p.add_argument("--length-coef", type=float, default=0.0,
                   help="arm (d): LCPO-Exact length term, reward minus this x |thinking tokens - budget| "
                        "(GRPOConfig.budget_length_coef; default 0 = off)")
    p.add_argument("--length-passed-only", action="store_true",
                   help="arm (d): the length term on passing samples only (GRPOConfig.budget_length_passed_only)")
    p.add_argument("--budget-balance", choices=("off", "mass", "length"), default="off",
                   help="arm (d): every drawn budget pushes equally hard per step, by total |advantage| (mass) or "
                        "by its push on thinking length (length) (GRPOConfig.budget_balance; default off)")
    p.add_argument("--form-exploration", type=float, default=0.0,
                   help="arm (d): share of each group whose thought is opened in a given form, the forms in turn "
                        "(GRPOConfig.form_exploration; default 0 = off)")
    p.add_argument("--form-credit", type=float, default=0.0,
                   help="arm (d), with --form-exploration: credit the choice of form itself, one one-token sample "
                        "per form where the forms part, advantage F x (form's mean reward - mean over forms) "
                        "(GRPOConfig.form_credit; default 0 = off)")
    p.add_argument("--estimator", choices=("grpo", "best"), default="grpo",
                   help="arm (d): advantage estimator (GRPOConfig.advantage_estimator): grpo, or best = only the best "
                        "sample of each (prompt, budget) group is reinforced, one equal vote per group (default grpo)")
    p.add_argument("--anytime-cuts", default="",
                   help="arm (e): thinking budgets where each thought is cut and answered (GRPOConfig.anytime_cuts; "
                        "default: the held-out budgets below the largest --ladder-choices budget, at which the "
                        "thoughts are rolled out)")
    p.add_argument("--anytime-answers", type=int, default=2,
                   help="arm (e): answers sampled per cut (GRPOConfig.anytime_answers; default 2)")
    p.add_argument("--kl-coef", type=float, default=0.0,
                   help="k3 KL to the cold start, every arm (GRPOConfig.kl_coef; default 0 = none): keeps both "
                        "thought forms in the samples while the policy learns which budget wants which")
    p.add_argument("--n", type=int, default=2000, help="training records (default 2000)")
    p.add_argument("--held-out", type=int, default=200, help="held-out records (default 200)")
    p.add_argument("--sft-steps", type=int, default=1000, help="cold-start SFT steps (default 1000)")
    p.add_argument("--sft-lr", type=float, default=3e-3, help="cold-start SFT learning rate (default 3e-3)")
    p.add_argument("--items", default="3-6", help="terms per running sum, MIN-MAX (default 3-6): longer sums make "
                   "the short form's mental addition less accurate, so the long form pays more where it fits")
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


def parse_items(text: str) -> tuple[int, int]:
    """`--items MIN-MAX` -> (MIN, MAX), 1 <= MIN <= MAX <= 8 (the labels a-h)."""
    try:
        lo, hi = (int(x) for x in text.split("-"))
    except ValueError:
        raise SystemExit(f"--items takes MIN-MAX, e.g. 3-6; got {text!r}") from None
    if not 1 <= lo <= hi <= 8:
        raise SystemExit(f"--items {text}: need 1 <= MIN <= MAX <= 8 (one label a-h per term)")
    return lo, hi


def cold_start(args: argparse.Namespace, data: Path, sft_dir: Path, hint_budgets: list[int]) -> str:
    """SFT on worked thoughts, or OUT/sft as an earlier run left it when made with the same settings
    (the marker file names them), so a second `--quick` run skips the slowest part."""
    from training.sft import warm_up
    from training.sft_config import SFTConfig

    hint = None if args.hint.strip().lower() == "off" else args.hint
    settings = {"n": args.n, "sft_steps": args.sft_steps, "sft_lr": args.sft_lr, "short_thoughts": args.short_thoughts,
                **({"items": args.items} if args.items != "3-6" else {}),
                "batch_size": SFT_BATCH, "hint": hint, "hint_budgets": hint_budgets, "version": 3}
    marker = sft_dir / "bench_sft.json"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        print(f"cold start: reusing {sft_dir} (same data and SFT settings)")
        return str(sft_dir)
    warm_up(SFTConfig(model="tiny", train_data=str(data), output_dir=str(sft_dir), steps=args.sft_steps,
                      batch_size=SFT_BATCH, lr=args.sft_lr, short_thoughts=args.short_thoughts, lr_schedule="cosine",
                      budget_hint=hint or "", hint_budgets=",".join(map(str, hint_budgets)) if hint else ""))
    marker.write_text(json.dumps(settings) + "\n")
    return str(sft_dir)


def eval_budgets(text: str) -> list[int | None]:
    return [None if b.strip() == "full" else int(b) for b in text.split(",")]


def score(engine: Any, policy: Any, records: list, model_dir: str, budgets: list[int | None],
          cfg: Any) -> dict[str, dict[str, float]]:
    """Held-out accuracy, mean thinking tokens and short-form share per budget; greedy on vLLM, 4
    samples at temperature 1 on HF generate."""
    from benches.held_out import evaluate
    from training.rollout.samples import HFEngine

    sampled = isinstance(engine, HFEngine)  # HF generate cannot sample at temperature 0
    got = {"full" if b is None else str(b): evaluate(engine, policy, records, model_dir, b, cfg,
                                                     samples=4 if sampled else 1, temperature=1.0 if sampled else 0.0)
           for b in budgets}
    return {key: {b: r[name] for b, r in got.items()} for key, name in
            (("accuracy", "accuracy"), ("think", "think_tokens"), ("short", "short_share"))}


def parse_ladder(text: str, full: int | None = None) -> list[int]:
    """'8,12,32,full' -> [8, 12, 32, full]: `full` is the budget a request without one gets (what
    max_new_tokens leaves after the answer reserve: the held-out `full` column, the number its hint
    shows); left out when `full` is None (to size max_new_tokens from the numbers)."""
    try:
        return [int(c) for c in text.split(",") if c.strip() != "full"] + \
            ([full] if full is not None and "full" in [c.strip() for c in text.split(",")] else [])
    except ValueError:
        raise SystemExit(f"--ladder-choices takes budgets and 'full', e.g. '8,12,32,full'; got {text!r}") from None


def auc(acc: dict[str, float], xs: dict[str, int]) -> float:
    """Area under accuracy vs thinking budget (trapezoids over the budgets' token values, `full` at the
    effective full budget), divided by the budget range: 1.0 = always right, even at budget 0."""
    keys = sorted(acc, key=lambda k: xs[k])
    area = sum((xs[b] - xs[a]) * (acc[a] + acc[b]) / 2 for a, b in zip(keys, keys[1:]))
    return area / (xs[keys[-1]] - xs[keys[0]])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "e" not in args.only and (args.anytime_cuts or args.anytime_answers != 2):
        raise SystemExit("--anytime-cuts and --anytime-answers apply to arm (e) only: add e to --only or drop them")
    if "d" not in args.only and (args.length_coef or args.budget_per != "group" or args.estimator != "grpo"
                                 or args.length_passed_only or args.budget_balance != "off" or args.form_exploration
                                 or args.form_credit):
        raise SystemExit("--length-coef, --length-passed-only, --budget-balance, --form-exploration, --form-credit, "
                         "--budget-per and "
                         "--estimator apply to arm (d) only: add d to --only or drop them")
    if args.form_credit and not args.form_exploration:
        raise SystemExit("--form-credit credits the form choice from opened samples: add --form-exploration "
                         "(e.g. 0.5) or drop --form-credit")
    from budget.fit import fit
    from tasks.records import load_records
    from tasks.running_sums import make_arith_dataset
    from training.config import GRPOConfig
    from training.learner.policy import load_policy
    from training.train import resolve_model, train

    out = Path(args.out)
    t0 = time.monotonic()
    hint = "" if args.hint.strip().lower() == "off" else args.hint
    budgets = eval_budgets(args.eval_budgets)
    max_new_tokens = max([args.budget, *parse_ladder(args.ladder_choices)] + [int(c) for c in args.choices.split(",")]) + 40
    # The budgets the engine enforces (what the hint shows): the rollout fit rule, `full` = no budget.
    closing = _closing_len(resolve_model("tiny"))
    xs = {("full" if b is None else str(b)): fit(b, max_new_tokens, closing, 16, prefix_tokens=1).think_budget
          for b in budgets}
    # `full` in the ladder is the held-out `full` column's budget. `thinkcap serve` shows a request without a
    # budget one token more (its chat template opens `<think>` in the prompt; a rollout writes it), and a
    # policy trained at 53 wrote long thoughts there and short ones at the server's 54 (docs/training.md).
    ladder = parse_ladder(args.ladder_choices, full=fit(None, max_new_tokens, closing, 16, prefix_tokens=1).think_budget)
    args.ladder_choices = ",".join(str(b) for b in ladder)
    items = parse_items(args.items)
    data = make_arith_dataset(out / "data", n=args.n, seed=0, items=items)
    held_out = load_records(make_arith_dataset(out / "held_out", n=args.held_out, seed=1, items=items))
    rl_data = data if args.rl_prompts == "sft" else make_arith_dataset(out / "rl_data", n=args.n, seed=2, items=items)
    warm = args.sft_model or cold_start(args, data, out / "sft", sorted(set(xs.values())))
    sft_s = time.monotonic() - t0
    engine, evals, runs = None, {}, {}
    for label, overrides in ARMS.items():
        if label[0] not in args.only:
            continue
        for seed in range(args.seeds):
            run_dir = out / f"arm-{label[0]}-seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            drawn = {"rollout_budget_choices": args.choices} if overrides.get("budget_aware_advantages") else {}
            budget = args.budget
            if label[0] == "d":
                drawn = {"rollout_budget_choices": args.ladder_choices,
                         "forced_close_penalty": args.forced_close_penalty, "rollout_budget_per": args.budget_per,
                         "budget_length_coef": args.length_coef, "advantage_estimator": args.estimator,
                         "budget_length_passed_only": args.length_passed_only, "budget_balance": args.budget_balance,
                         "form_exploration": args.form_exploration, "form_credit": args.form_credit}
            if label[0] == "e":
                budget = max(ladder)
                cuts = args.anytime_cuts or ",".join(str(b) for b in budgets if b is not None and b < budget)
                if not cuts:
                    raise SystemExit(f"arm (e) cuts thoughts of budget {budget} (the largest --ladder-choices) at the "
                                     "held-out budgets below it, and --eval-budgets has none: pass --anytime-cuts")
                drawn = {"anytime_cuts": cuts, "anytime_answers": args.anytime_answers}
            cfg = GRPOConfig(
                model=warm, train_data=str(rl_data), output_dir=str(run_dir), seed=seed, steps=args.steps,
                prompts_per_step=args.prompts, group_size=args.group, num_minibatches=2, lr=args.lr,
                rollout_engine=args.engine, max_new_tokens=max_new_tokens, rollout_think_budget=budget,
                answer_reserve=16, save_every=0, resume=False, progress_bar=False, budget_hint=hint,
                temperature=args.temperature, kl_coef=args.kl_coef,
                **{**overrides, **drawn})
            start = time.monotonic()
            result = train(cfg, engine=engine)
            engine = result["engine"]  # one engine for every run: each run loads its own weights into it
            seconds = time.monotonic() - start
            for name, policy in ([(SFT, load_policy(warm))] if not evals else []) + [(label, result["policy"])]:
                evals.setdefault(name, []).append(score(engine, policy, held_out, warm, budgets, cfg))
            runs.setdefault(label, []).append({"seconds": seconds, "checkpoint": str(result["checkpoint"]),
                                               "reward_last": result["history"][-1]["reward/mean"]})
    summary = summarize(evals, xs, args)
    summary.update({"args": vars(args), "sft_seconds": sft_s, "total_seconds": time.monotonic() - t0, "runs": runs})
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")  # before anything else can fail
    summary["plot"] = str(plot_curves(summary["accuracy"], out / "budget_curve.png", args))
    summary["best_policy"] = str(export_best(evals, runs, xs, out / "best-policy"))
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary, args)
    return 0


def _closing_len(model_dir: str) -> int:
    from transformers import AutoTokenizer

    from budget import build_profile

    return len(build_profile(AutoTokenizer.from_pretrained(model_dir), model_type="glm4v").closing_ids)


def summarize(evals: dict[str, list[dict[str, dict[str, float]]]], xs: dict[str, int],
              args: argparse.Namespace) -> dict[str, Any]:
    """Per arm: accuracy per budget and AUC with intervals over seeds, thinking tokens, short-form share."""
    def mean(values: list[float]) -> float:
        kept = [v for v in values if v == v]  # NaN: no running-sum thought at that budget
        return sum(kept) / len(kept) if kept else float("nan")

    return {
        "accuracy": {lab: {b: runs_interval([e["accuracy"][b] for e in es], args.held_out) for b in es[0]["accuracy"]}
                     for lab, es in evals.items()},
        "auc": {lab: runs_interval([auc(e["accuracy"], xs) for e in es], args.held_out) for lab, es in evals.items()},
        "think_tokens": {lab: {b: mean([e["think"][b] for e in es]) for b in es[0]["think"]} for lab, es in evals.items()},
        "short_share": {lab: {b: mean([e["short"][b] for e in es]) for b in es[0]["short"]} for lab, es in evals.items()},
        "effective_budgets": xs,
        "per_seed": evals,
    }


def export_best(evals: dict[str, list[dict[str, Any]]], runs: dict[str, list[dict[str, Any]]], xs: dict[str, int],
                dest: Path) -> Path:
    """Copy the final policy of the run with the highest AUC to OUT/best-policy: a fixed path the
    README's serve / eval / demo commands can name. It keeps its thinkcap_policy.json (the hint)."""
    label, seed = max(((lab, i) for lab in runs for i in range(len(runs[lab]))),
                      key=lambda k: auc(evals[k[0]][k[1]]["accuracy"], xs))
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
        # max(0, ...): a Wilson bound can sit a rounding error inside the mean (matplotlib refuses < 0)
        yerr = [[max(0.0, m - per_budget[k][1]) for m, k in zip(means, keys)],
                [max(0.0, per_budget[k][2] - m) for m, k in zip(means, keys)]]
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
    print(f"{'held-out accuracy at budget (95% interval)':<44}" + "".join(f"{k:>20}" for k in keys)
          + f"{'AUC':>20}  think@full")
    for label, per in acc.items():
        a = summary["auc"][label]
        print(f"{label:<44}" + "".join(f"{per[k][0]:>7.3f} [{per[k][1]:.3f},{per[k][2]:.3f}]" for k in keys)
              + f"{a[0]:>7.3f} [{a[1]:.3f},{a[2]:.3f}]" + f"{summary['think_tokens'][label][keys[-1]]:>12.1f}")
    print(f"\n{'short-form share of thoughts at budget':<44}" + "".join(f"{k:>20}" for k in keys))
    for label, per in summary["short_share"].items():
        print(f"{label:<44}" + "".join(f"{per[k]:>20.2f}" for k in keys))
    print(f"plot: {summary['plot']}")
    print(f"best run's policy (serve it: thinkcap serve {summary['best_policy']}): "
          f"{json.loads(Path(summary['best_policy'], 'bench_source.json').read_text())['arm']}")
