"""Per budget (and per domain) summaries of scored responses: accuracy with a 95% interval,
pass@k, thinking tokens, forced/empty/format rates, latency and speed.

Intervals: with one sample per item and 0/1 scores, the Wilson score interval (sound near 0 and 1,
where a random-weight or a strong model sits). Otherwise (K samples per item, or partial-credit
verifiers such as OCR/IoU) a percentile bootstrap over items, since samples of one item are not
independent. The bootstrap seed is fixed so the same rows give the same table.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from math import comb
from typing import Any

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# two-sided 95% Student t quantiles by number of runs (df = runs - 1)
T_95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def runs_interval(values: list[float], n_items: int) -> tuple[float, float, float]:
    """(mean, low, high) of per-run accuracies: Student t over runs (seeds); one run: Wilson over its
    `n_items` items, so 0 of 100 reads [0, 0.037] and not a zero-width interval."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        low, high = wilson(mean * n_items, n_items)
        return mean, min(low, mean), max(high, mean)  # Wilson holds the mean; rounding may not
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = T_95.get(len(values), 2.0) * sd / math.sqrt(len(values))
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def bootstrap(item_means: list[float], seed: int = 0) -> tuple[float, float]:
    if not item_means:
        return math.nan, math.nan
    values = np.asarray(item_means, dtype=float)
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))].mean(axis=1)
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k from n samples of which `correct` are right (Chen et al. 2021)."""
    if n - correct < k:
        return 1.0
    return 1.0 - comb(n - correct, k) / comb(n, k)


def _mean(values: Iterable[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


def summarize(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """One table row from the responses of one (budget, domain) cell. Rows with an `error` (the
    request failed) count only in `error_rate`."""
    ok = [r for r in rows if not r.get("error")]
    by_item: dict[str, list[float]] = defaultdict(list)
    for r in ok:
        by_item[r["item_id"]].append(r["accuracy"])
    binary = all(r["accuracy"] in (0.0, 1.0) for r in ok)
    accuracy = _mean(r["accuracy"] for r in ok)
    if binary and all(len(v) == 1 for v in by_item.values()):
        low, high = wilson(sum(r["accuracy"] for r in ok), len(ok))
    else:
        low, high = bootstrap([float(np.mean(v)) for v in by_item.values()])
    full = [v for v in by_item.values() if len(v) >= k]
    forced = [r["answer_forced"] for r in ok if r.get("answer_forced") is not None]
    # Thinking past a numeric budget: what a grace window (or a wrap-up message) costs.
    over = [max(0, r["thinking_tokens"] - int(r["budget"])) for r in ok
            if str(r.get("budget", "")).isdigit() and r.get("thinking_tokens") is not None]
    reasons = Counter(r["close_reason"] for r in ok if r.get("close_reason"))
    return {
        "items": len(by_item),
        "responses": len(ok),
        "accuracy": accuracy,
        "ci95_low": low,
        "ci95_high": high,
        f"pass@{k}": _mean(pass_at_k(len(v), sum(s >= 1.0 for s in v), k) for v in full) if full else math.nan,
        "mean_thinking_tokens": _mean(r.get("thinking_tokens") for r in ok),
        # Servers that do not report forcing (vLLM's own) leave this NaN rather than guessed.
        "forced_rate": _mean(float(f) for f in forced) if forced else math.nan,
        "mean_overshoot": _mean(over) if over else math.nan,
        "close_reasons": " ".join(f"{k}:{n}" for k, n in sorted(reasons.items())),
        "empty_answer_rate": _mean(float(not r["has_answer"]) for r in ok),
        "format_valid_rate": _mean(float(r["format_valid"]) for r in ok),
        "mean_latency_s": _mean(r.get("latency_s") for r in ok),
        "mean_tokens_per_s": _mean(
            r["completion_tokens"] / r["latency_s"] for r in ok
            if r.get("completion_tokens") and r.get("latency_s")),
        "error_rate": (len(rows) - len(ok)) / len(rows) if rows else math.nan,
    }


def table(rows: list[dict[str, Any]], budget_labels: list[str], k: int) -> list[dict[str, Any]]:
    """Rows of the output table: per budget (in sweep order) the `all` domain, then each domain."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        cells[(r["budget"], "all")].append(r)
        cells[(r["budget"], r["domain"])].append(r)
    domains = sorted({r["domain"] for r in rows})
    out = []
    for label in budget_labels:
        for domain in ("all", *domains):
            if cells.get((label, domain)):
                out.append({"budget": label, "domain": domain, **summarize(cells[(label, domain)], k)})
    return out
