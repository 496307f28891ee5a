"""The answer reserve once max_tokens is known (`budget.resolve_params`) and the forced `<think>`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from budget.fit import RESERVE_FLOOR
from budget import BudgetParams, ThinkState, enforces, params_from_args, resolve_params
from tests.budget.test_state import ANS, CLOSE, GLM, OPEN, run


def test_open_thinking_forces_think_then_budget_counts():
    params = BudgetParams(think_budget=3, open_thinking=True)
    state, emitted = run(GLM, params, [], [50] * 10)
    assert emitted[:7] == [OPEN, 50, 50, 50, CLOSE, ANS, 50]
    assert state.forced_positions == [0, 4, 5] and state.num_thinking_tokens == 3 and state.answer_forced


def test_open_thinking_budget_zero_and_prompt_already_open():
    state, emitted = run(GLM, BudgetParams(think_budget=0, open_thinking=True), [], [50] * 4)
    assert emitted[:3] == [OPEN, CLOSE, ANS] and state.forced_positions == [0, 1, 2]
    assert ThinkState(GLM, BudgetParams(think_budget=2, open_thinking=True), [OPEN]).forced_token() is None


@given(budget=st.one_of(st.none(), st.integers(0, 50)), max_tokens=st.integers(1, 80), reserve=st.integers(0, 30),
       prompt_open=st.booleans())
def test_resolved_budget_always_leaves_the_answer_inside_max_tokens(budget, max_tokens, reserve, prompt_open):
    params = BudgetParams(think_budget=budget, open_thinking=True, answer_reserve=reserve)
    prompt = [OPEN] if prompt_open else []
    out = resolve_params(GLM, params, prompt, max_tokens)
    prefix = 0 if prompt_open else 1
    room = max_tokens - prefix - 2
    if room < 0:  # cannot even close: nothing enforced, plain generation
        assert out.think_budget is None and not enforces(out)
        return
    assert prefix + out.think_budget + 2 + out.answer_reserve <= max_tokens
    # the fit rule (budget.fit): an explicit budget that fits next to the reserve's floor is kept
    if budget is not None and budget + min(reserve, RESERVE_FLOOR) <= room:
        assert out.think_budget == budget and out.answer_reserve == min(reserve, room - budget)
    else:
        assert out.answer_reserve == min(reserve, room) and out.think_budget == room - out.answer_reserve


def test_params_without_reserve_pass_unchanged_and_extra_args_round_trip():
    params = BudgetParams(think_budget=7, min_think_tokens=2, open_thinking=True, answer_reserve=16)
    assert params_from_args(params.to_extra_args()) == params
    plain = BudgetParams(think_budget=7)
    assert resolve_params(GLM, plain, [], 5) is plain  # a plain vLLM user's budget is taken as given


def test_min_think_is_clamped_to_the_resolved_budget():
    params = BudgetParams(think_budget=20, min_think_tokens=20, open_thinking=True, answer_reserve=4)
    out = resolve_params(GLM, params, [], 12)  # room 9 → reserve 4, budget 5
    assert (out.think_budget, out.min_think_tokens, out.answer_reserve) == (5, 5, 4)
