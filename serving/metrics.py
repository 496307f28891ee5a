"""thinkcap's Prometheus series, served on vLLM's own `/metrics` beside the `vllm:` ones.

They are recorded in the API-server process, where the `thinkcap` object is computed
(`serving.tracker`), once per finished choice. Registered like vLLM's API-server series: on
prometheus_client's default registry, at import. With `--api-server-count` > 1 vLLM sets
`PROMETHEUS_MULTIPROC_DIR` before it spawns the API servers (`setup_multiprocess_prometheus`), so
prometheus_client writes each process's values to files there and vLLM's `/metrics`
(`get_prometheus_registry` → `MultiProcessCollector`) sums them: any API server's scrape shows
the whole server. Counters and histograms sum correctly across processes; gauges would not, so
there are none.

| series                               | one observation per choice                                |
|--------------------------------------|-----------------------------------------------------------|
| `thinkcap_thinking_tokens`           | `num_thinking_tokens`                                     |
| `thinkcap_requested_budget`          | the budget the request asked for (unlimited: none)        |
| `thinkcap_effective_budget`          | the budget enforced (after the answer reserve, the turn)  |
| `thinkcap_closes_total{close_reason}`| how thinking ended (`none`: it did not, or never began)   |
| `thinkcap_grace_tokens`              | thinking past the budget, on choices with a grace window  |
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

# Powers of two: budgets and thought lengths span 0 to the context length.
TOKEN_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
GRACE_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
NO_CLOSE = "none"

THINKING_TOKENS = Histogram("thinkcap_thinking_tokens", "Thinking tokens per choice.", buckets=TOKEN_BUCKETS)
REQUESTED_BUDGET = Histogram("thinkcap_requested_budget", "Think budget asked for per choice (budgeted only).",
                             buckets=TOKEN_BUCKETS)
EFFECTIVE_BUDGET = Histogram("thinkcap_effective_budget",
                             "Think budget enforced per choice, after the answer reserve and the turn's spent thinking.",
                             buckets=TOKEN_BUCKETS)
CLOSES = Counter("thinkcap_closes", "Choices by how thinking ended.", ["close_reason"])
GRACE_TOKENS = Histogram("thinkcap_grace_tokens", "Thinking tokens past the budget, per choice with a grace window.",
                         buckets=GRACE_BUCKETS)


def observe(params: Any, requested: int | None, info: dict[str, Any]) -> None:
    """One finished choice: `params` the BudgetParams it was enforced with, `requested` the budget
    asked for, `info` its `thinkcap` object."""
    thinking = info["num_thinking_tokens"]
    THINKING_TOKENS.observe(thinking)
    if requested is not None:
        REQUESTED_BUDGET.observe(requested)
    effective = info["think_budget"]
    if effective is not None:
        EFFECTIVE_BUDGET.observe(effective)
        if params is not None and params.grace > 0:
            GRACE_TOKENS.observe(max(0, thinking - effective))
    CLOSES.labels(close_reason=info["close_reason"] or NO_CLOSE).inc()
