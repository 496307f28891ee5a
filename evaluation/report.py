"""Write the sweep's table (CSV + JSON) and its plots (PNG, matplotlib's Agg backend: no display).

Plots: accuracy vs budget (overall with its 95% band, and per domain), accuracy vs mean thinking
tokens (the test-time scaling curve, a budget per point), forced-answer and empty-answer rates vs
budget. Numeric budgets sit on a log2-like axis (0 included); `unlimited` and effort names go to the
right end, labelled, since they have no token position.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from evaluation.budgets import Budget


def write_table(rows: list[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "summary.csv", out_dir / "summary.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
    json_path.write_text(json.dumps({**meta, "table": clean}, indent=2) + "\n")
    return csv_path, json_path


def budget_positions(budgets: list[Budget]) -> tuple[list[float], list[str]]:
    """x positions: symlog-spaced numeric budgets, then the non-numeric ones one step apart."""
    numeric = [math.log2(b.tokens + 1) for b in budgets if b.tokens is not None]
    right = max(numeric, default=0.0)
    xs, step = [], max(1.0, right / max(1, len(numeric)))
    for b in budgets:
        if b.tokens is not None:
            xs.append(math.log2(b.tokens + 1))
        else:
            right += step
            xs.append(right)
    return xs, [b.label for b in budgets]


def _series(rows: list[dict[str, Any]], budgets: list[Budget], domain: str, key: str) -> tuple[list[float], list[float]]:
    xs, _ = budget_positions(budgets)
    by_budget = {r["budget"]: r for r in rows if r["domain"] == domain}
    pairs = [(x, by_budget[b.label][key]) for x, b in zip(xs, budgets) if b.label in by_budget]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def write_plots(rows: list[dict[str, Any]], budgets: list[Budget], out_dir: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, labels = budget_positions(budgets)
    domains = sorted({r["domain"] for r in rows} - {"all"})
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x, acc = _series(rows, budgets, "all", "accuracy")
    _, low = _series(rows, budgets, "all", "ci95_low")
    _, high = _series(rows, budgets, "all", "ci95_high")
    ax.plot(x, acc, "o-", color="black", lw=2, label="all")
    ax.fill_between(x, low, high, color="black", alpha=0.12, label="95% interval")
    for domain in domains:
        ax.plot(*_series(rows, budgets, domain, "accuracy"), "o--", lw=1, label=domain)
    ax.set(xticks=xs, xlabel="thinking budget (tokens)", ylabel="accuracy", title=f"Accuracy vs budget — {title}")
    ax.set_xticklabels(labels)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "accuracy_vs_budget.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for domain in ("all", *domains):
        cells = [r for r in rows if r["domain"] == domain]
        ax.plot([r["mean_thinking_tokens"] for r in cells], [r["accuracy"] for r in cells], "o-",
                lw=2 if domain == "all" else 1, color="black" if domain == "all" else None, label=domain)
        if domain == "all":
            for r in cells:
                ax.annotate(r["budget"], (r["mean_thinking_tokens"], r["accuracy"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    ax.set(xlabel="mean thinking tokens", ylabel="accuracy", title=f"Accuracy vs thinking — {title}")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "accuracy_vs_thinking.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    # Distinct markers and dashes: rates often coincide (all 1.0), and no line may hide another.
    for (key, name), style in zip((("forced_rate", "forced answer"), ("empty_answer_rate", "empty answer (no box)"),
                                   ("format_valid_rate", "format valid")), ("o-", "s--", "^:")):
        ax.plot(*_series(rows, budgets, "all", key), style, ms=8 if style == "o-" else 5, label=name)
    ax.set(xticks=xs, xlabel="thinking budget (tokens)", ylabel="share of responses", ylim=(-0.03, 1.03),
           title=f"Forced and empty answers — {title}")
    ax.set_xticklabels(labels)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "rates_vs_budget.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.title.set_fontsize(10)  # long titles (model ids) must fit the figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
