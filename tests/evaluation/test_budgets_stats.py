"""Pure parts: budget parsing and request fields, intervals, pass@k, per-cell summaries."""

from __future__ import annotations

import math

import pytest

from evaluation.budgets import Budget, budget_body, parse_budgets
from scoring.stats import bootstrap, pass_at_k, summarize, table, wilson


def test_parse_budgets_in_order_with_unlimited():
    budgets = parse_budgets("0, 16,64,unlimited", "think_budget")
    assert [b.label for b in budgets] == ["0", "16", "64", "unlimited"]
    assert [b.value for b in budgets] == [0, 16, 64, None]
    assert [b.tokens for b in budgets] == [0.0, 16.0, 64.0, None]


@pytest.mark.parametrize(("text", "param", "needle"), [
    ("-5", "think_budget", ">= 0"), ("abc", "think_budget", "integer"), ("8,8", "think_budget", "twice"),
    ("64", "reasoning_effort", "low, medium, high"), ("8", "max_budget", "--budget-param"),
])
def test_parse_budgets_refuses_with_the_option_named(text, param, needle):
    with pytest.raises(ValueError, match=needle):
        parse_budgets(text, param)


def test_budget_body_per_param():
    unlimited, eight = Budget("unlimited", None), Budget("8", 8)
    assert budget_body("think_budget", unlimited) == {"think_budget": None}  # explicit null: not the server default
    assert budget_body("think_budget", eight) == {"think_budget": 8}
    assert budget_body("thinking_token_budget", eight) == {"thinking_token_budget": 8}
    assert budget_body("thinking_token_budget", unlimited) == {}
    assert budget_body("reasoning_effort", Budget("low", "low")) == {"reasoning_effort": "low"}


def test_wilson_known_values():
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    low, high = wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_pass_at_k():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_bootstrap_contains_the_mean_and_is_reproducible():
    means = [0.0, 0.25, 0.5, 1.0, 1.0, 0.0, 0.75]
    low, high = bootstrap(means)
    assert low < sum(means) / len(means) < high
    assert bootstrap(means) == (low, high)


def _row(item, budget, acc, **kw):
    return {"item_id": item, "budget": budget, "domain": kw.pop("domain", "counting"), "accuracy": acc,
            "has_answer": kw.pop("has_answer", True), "format_valid": True, "thinking_tokens": kw.pop("think", 4),
            "answer_forced": kw.pop("forced", None), "latency_s": 0.5, "completion_tokens": 10, **kw}


def test_summarize_counts_rates_and_errors():
    rows = [_row("a", "8", 1.0, forced=True), _row("b", "8", 0.0, has_answer=False, forced=False, think=8),
            _row("c", "8", 0.0, error="APIConnectionError: down")]
    s = summarize(rows, k=1)
    assert (s["items"], s["responses"]) == (2, 2)
    assert s["accuracy"] == 0.5 and s["ci95_low"] < 0.5 < s["ci95_high"]
    assert s["mean_thinking_tokens"] == 6 and s["forced_rate"] == 0.5
    assert s["empty_answer_rate"] == 0.5 and s["error_rate"] == pytest.approx(1 / 3)
    assert s["mean_tokens_per_s"] == 20 and s["mean_latency_s"] == 0.5


def test_summarize_overshoot_and_close_reasons():
    """Thinking past a numeric budget (a grace window's cost) and how thinking ended, per cell."""
    rows = [_row("a", "8", 1.0, think=8, close_reason="budget"), _row("b", "8", 1.0, think=11, close_reason="boundary"),
            _row("c", "8", 0.0, think=5, close_reason="model"), _row("d", "8", 0.0, think=12, close_reason="boundary")]
    s = summarize(rows, k=1)
    assert s["mean_overshoot"] == pytest.approx((0 + 3 + 0 + 4) / 4)
    assert s["close_reasons"] == "boundary:2 budget:1 model:1"
    unlimited = summarize([_row("a", "unlimited", 1.0, think=30)], k=1)
    assert math.isnan(unlimited["mean_overshoot"]) and unlimited["close_reasons"] == ""


def test_summarize_forced_rate_unknown_for_servers_that_do_not_say():
    assert math.isnan(summarize([_row("a", "8", 1.0)], k=1)["forced_rate"])


def test_samples_use_pass_at_k_and_bootstrap_over_items():
    rows = [_row(item, "8", acc, sample=s) for item, accs in (("a", (1.0, 0.0)), ("b", (0.0, 0.0)))
            for s, acc in enumerate(accs)]
    s = summarize(rows, k=2)
    assert s["accuracy"] == 0.25 and s["pass@2"] == 0.5 and s["items"] == 2
    assert 0.0 <= s["ci95_low"] <= 0.25 <= s["ci95_high"] <= 0.5  # item means are 0.5 and 0


def test_table_orders_budgets_and_adds_domains():
    rows = [_row("a", "64", 1.0), _row("b", "0", 0.0, domain="numeric"), _row("c", "unlimited", 1.0)]
    out = table(rows, ["0", "64", "unlimited"], k=1)
    assert [(r["budget"], r["domain"]) for r in out] == [
        ("0", "all"), ("0", "numeric"), ("64", "all"), ("64", "counting"), ("unlimited", "all"), ("unlimited", "counting")]


def test_runs_interval_is_never_zero_width_at_zero_or_one():
    """One run of 0/100 (or 100/100): Wilson over the items, not ±0.000; several runs: Student t."""
    from scoring.stats import runs_interval

    mean, low, high = runs_interval([0.0], 100)
    assert mean == 0.0 and abs(low) < 1e-12 and 0.03 < high < 0.04
    mean, low, high = runs_interval([1.0], 100)
    assert mean == 1.0 and high == 1.0 and 0.96 < low < 0.97
    mean, low, high = runs_interval([0.2, 0.4, 0.3], 100)  # sd 0.1, t(2) = 4.30
    assert abs(mean - 0.3) < 1e-12 and abs(high - mean - 4.30 * 0.1 / 3 ** 0.5) < 1e-9 and abs(low - (2 * mean - high)) < 1e-9
