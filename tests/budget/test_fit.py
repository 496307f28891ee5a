"""The fit rule (budget.fit, docs/api.md): the reserve gives way before an explicit budget does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from budget.fit import RESERVE_FLOOR, fit

budgets = st.one_of(st.none(), st.integers(0, 3000))
sizes = dict(max_tokens=st.integers(0, 4000), closing=st.integers(1, 4), reserve=st.integers(0, 512),
             prefix=st.integers(0, 1))


@given(budget=budgets, **sizes)
def test_everything_fits_inside_max_tokens(budget, max_tokens, closing, reserve, prefix):
    got = fit(budget, max_tokens, closing, reserve, prefix)
    if max_tokens < prefix + closing:
        assert got is None
        return
    assert got is not None and got.think_budget >= 0 and 0 <= got.answer_reserve <= reserve
    assert prefix + got.think_budget + closing + got.answer_reserve <= max_tokens
    if budget is not None:
        assert got.think_budget <= budget


@given(budget=st.integers(0, 3000), **sizes)
def test_an_explicit_budget_that_fits_is_never_reduced(budget, max_tokens, closing, reserve, prefix):
    if prefix + budget + closing + min(reserve, RESERVE_FLOOR) <= max_tokens:
        got = fit(budget, max_tokens, closing, reserve, prefix)
        assert got.think_budget == budget
        assert got.answer_reserve >= min(reserve, RESERVE_FLOOR)  # the reserve shrank, not below its floor


@given(budget=budgets, **sizes)
def test_the_full_reserve_stays_when_there_is_room_for_it(budget, max_tokens, closing, reserve, prefix):
    room = max_tokens - prefix - closing
    got = fit(budget, max_tokens, closing, reserve, prefix)
    if room >= reserve + (budget or 0) or (budget is not None and budget + min(reserve, RESERVE_FLOOR) > room >= reserve):
        assert got.answer_reserve == reserve


@given(**sizes)
def test_no_budget_thinks_in_all_the_room_the_reserve_leaves(max_tokens, closing, reserve, prefix):
    got = fit(None, max_tokens, closing, reserve, prefix)
    if got is not None:
        assert prefix + got.think_budget + closing + got.answer_reserve == max_tokens


def test_issue_19_small_budget_with_the_structured_output_reserve():
    """think_budget 4, max_tokens 64, the 256-token json_schema reserve: 4 thinking tokens, not 0."""
    got = fit(4, 64, closing_len=3, answer_reserve=256, prefix_tokens=1)
    assert (got.think_budget, got.answer_reserve) == (4, 56)
    big = fit(1000, 2000, closing_len=3, answer_reserve=256, prefix_tokens=1)
    assert (big.think_budget, big.answer_reserve) == (1000, 256)
