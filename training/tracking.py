"""Progress line, TensorBoard scalars, metrics.jsonl and the reward-curve PNG (rank 0 only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# What the progress line shows, in order (name, format); everything goes to TensorBoard and metrics.jsonl.
LINE_KEYS = {"reward/mean": ("reward", "{:.3f}"), "reward/accuracy": ("acc", "{:.3f}"),
             "rollout/think_len": ("think", "{:.1f}"), "rollout/forced_rate": ("forced", "{:.2f}"),
             "rollout/entropy": ("entropy", "{:.3f}"), "sampling/groups_kept": ("groups", "{:.0f}"),
             "time/step_s": ("s/step", "{:.1f}")}


def progress_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """`step 3/20 | reward 0.412 | acc 0.375 | think 31.2 | forced 0.44 | ... | s/step 12.3`."""
    parts = [f"step {step}/{total}"]
    parts += [f"{name} {fmt.format(metrics[k])}" for k, (name, fmt) in LINE_KEYS.items() if k in metrics]
    # held-out accuracy at each budget, on the steps that evaluate: `eval@32 0.250`
    parts += [f"eval@{k.partition('@')[2]} {v:.3f}" for k, v in metrics.items() if k.startswith("eval/accuracy@")]
    return " | ".join(parts)


class Tracker:
    def __init__(self, output_dir: str | Path, total_steps: int, history: list[dict[str, Any]],
                 enabled: bool = True, tensorboard: bool = True, progress_bar: bool = True,
                 wandb_project: str = "", config: dict[str, Any] | None = None):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self.writer = self.wandb = None
        self.total = total_steps
        self.progress = progress_bar
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Rewrite from the checkpoint's history: lines a killed run logged after its last
        # checkpoint are dropped, so the file matches the resumed run exactly.
        self.path.write_text("".join(json.dumps(h) + "\n" for h in history))
        start = history[-1]["step"] if history else 0
        if wandb_project:
            import wandb

            # resume="allow" with a run id from the output folder: a resumed run continues its curve.
            self.wandb = wandb.init(project=wandb_project, config=config, dir=str(self.path.parent),
                                    id=self.path.parent.resolve().name, resume="allow")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events the killed run wrote after the checkpoint.
            self.writer = SummaryWriter(str(Path(output_dir) / "tb"), purge_step=start + 1)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        if self.progress:
            print(progress_line(step, self.total, metrics), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(stats: list[dict[str, Any]], pass_threshold: float) -> dict[str, float]:
    """Step metrics from per-sample stats (all ranks): every reward component, per-task reward and
    accuracy, pass rate (pass@1) and pass@G, lengths, forced-answer and truncation rates."""
    out: dict[str, float] = {"reward/mean": _mean([s["reward"]["reward"] for s in stats])}
    for comp in sorted({k for s in stats for k in s["reward"]} - {"reward"}):
        out[f"reward/{comp}"] = _mean([s["reward"].get(comp, 0.0) for s in stats])
    for task in sorted({s["task"] for s in stats}):
        mine = [s for s in stats if s["task"] == task]
        out[f"task/{task}/reward"] = _mean([s["reward"]["reward"] for s in mine])
        out[f"task/{task}/accuracy"] = _mean([s["reward"].get("accuracy", 0.0) for s in mine])
    passed = [s["reward"].get("accuracy", 0.0) >= pass_threshold for s in stats]
    groups: dict[str, list[bool]] = {}
    for s, p in zip(stats, passed):
        groups.setdefault(s["group"], []).append(p)
    out["pass/rate"] = _mean([float(p) for p in passed])
    out["pass/at_k"] = _mean([float(any(g)) for g in groups.values()])
    out["rollout/response_len"] = _mean([s["response_len"] for s in stats])
    out["rollout/think_len"] = _mean([s["think_len"] for s in stats])
    out["rollout/forced_rate"] = _mean([float(s["forced"]) for s in stats])
    out["rollout/truncated_rate"] = _mean([float(s["truncated"]) for s in stats])
    return out


def smooth(values: list[float], window: int = 5) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1): i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def plot_rewards(runs: dict[str, list[dict[str, Any]]], path: str | Path, keys: tuple[str, ...] = ("reward/mean",),
                 title: str = "GRPO mean reward per step") -> Path:
    """One panel per metric key; in each, one line per run (raw, faint) plus its moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for (label, history), colour in zip(runs.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            steps = [h["step"] for h in history if key in h]
            values = [h[key] for h in history if key in h]
            ax.plot(steps, values, color=colour, alpha=0.3, linewidth=1)
            ax.plot(steps, smooth(values), color=colour, linewidth=2, label=label)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no 2.5 ticks
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
