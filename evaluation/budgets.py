"""The budgets of a sweep and how each is put in a request, for our server and for peers.

- `think_budget` (thinkcap): an int, or an explicit null for unlimited (leaving it out would apply
  the server's `--default-think-budget`).
- `thinking_token_budget` (vLLM's own server; acts only when the server was started with a
  reasoning config, `--reasoning-config`): an int; unlimited leaves the field out.
- `reasoning_effort`: the budgets are effort names (low/medium/high); unlimited leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUDGET_PARAMS = ("think_budget", "thinking_token_budget", "reasoning_effort")
EFFORTS = ("low", "medium", "high")
UNLIMITED = "unlimited"


@dataclass(frozen=True)
class Budget:
    label: str  # as written in --budgets and in every output: "0", "256", "unlimited", "low"
    value: int | str | None  # None: unlimited

    @property
    def tokens(self) -> float | None:
        """Position on a numeric budget axis (None for unlimited and effort names)."""
        return float(self.value) if isinstance(self.value, int) else None


def parse_budgets(text: str, param: str) -> list[Budget]:
    """`0,16,64,unlimited` (or `low,high,unlimited` for reasoning_effort), in the order given."""
    if param not in BUDGET_PARAMS:
        raise ValueError(f"--budget-param {param!r}: choose one of {', '.join(BUDGET_PARAMS)}")
    budgets: list[Budget] = []
    for raw in (part.strip() for part in text.split(",")):
        if raw.lower() in (UNLIMITED, "none", "-1"):
            budgets.append(Budget(UNLIMITED, None))
        elif param == "reasoning_effort":
            if raw not in EFFORTS:
                raise ValueError(f"--budgets {raw!r}: with --budget-param reasoning_effort use {', '.join(EFFORTS)} or unlimited")
            budgets.append(Budget(raw, raw))
        else:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"--budgets {raw!r}: expected an integer >= 0 or 'unlimited'") from None
            if value < 0:
                raise ValueError(f"--budgets {raw!r}: a budget must be >= 0 (or 'unlimited')")
            budgets.append(Budget(str(value), value))
    labels = [b.label for b in budgets]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--budgets {text!r}: a budget is listed twice")
    return budgets


def budget_body(param: str, budget: Budget) -> dict[str, Any]:
    """The request body fields that carry `budget` under `param`."""
    if param == "think_budget":
        return {"think_budget": budget.value}  # explicit null = unlimited
    return {} if budget.value is None else {param: budget.value}
