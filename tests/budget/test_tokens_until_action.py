"""`ThinkState.tokens_until_action`: the promise a batched adapter relies on to skip rows.

If the state says "k tokens until action", then after ANY j < k tokens the state must still ask
for nothing, so skipping it for k steps and catching up later is exact.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from budget import BudgetParams, ThinkProfile, ThinkState

OPEN, CLOSE, ANS, EOS = 10, 11, 12, 0
GLM = ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS}), answer_open_id=ANS)
TOKENS = st.one_of(st.integers(20, 40), st.sampled_from([OPEN, CLOSE, ANS, EOS]))


def asks(state: ThinkState) -> bool:
    return state.forced_token() is not None or bool(state.suppressed_ids())


@settings(max_examples=400, deadline=None)
@given(
    budget=st.one_of(st.none(), st.integers(0, 12)),
    min_think=st.integers(0, 4),
    transition=st.sampled_from([(), (50,), (50, 51)]),
    prompt_opens=st.booleans(),
    stream=st.lists(TOKENS, max_size=40),
)
def test_no_action_is_owed_before_the_promised_token(budget, min_think, transition, prompt_opens, stream):
    if budget is not None and min_think > budget:
        min_think = budget
    params = BudgetParams(think_budget=budget, min_think_tokens=min_think, message_ids=transition)
    state = ThinkState(GLM, params, [1, OPEN] if prompt_opens else [1])
    quiet_until = 0  # position before which the state promised to ask nothing
    for pos, model_tok in enumerate(stream):
        wait = state.tokens_until_action()
        if pos < quiet_until:
            assert not asks(state), f"promised quiet until {quiet_until}, asked at {pos}"
        if wait is None:
            quiet_until = 10**9
        elif wait == 0:
            assert asks(state) or state.phase.name == "BEFORE"
        else:
            quiet_until = max(quiet_until, pos + wait)
        forced = state.forced_token()
        tok = forced if forced is not None else (30 if model_tok in state.suppressed_ids() else model_tok)
        if forced is None and state.redirects_eos and tok == EOS:
            tok = CLOSE  # the adapter moves EOS's probability onto the close tag
        watched = state.redirects_eos
        state.advance(tok)
        if watched and tok == CLOSE:
            quiet_until = pos + 1  # the adapter's watch set wakes a row whose thinking closed


def test_values_for_simple_cases():
    assert ThinkState(GLM, BudgetParams(think_budget=5), [OPEN]).tokens_until_action() == 5
    assert ThinkState(GLM, BudgetParams(think_budget=5), [1]).tokens_until_action() == 6  # <think> first
    assert ThinkState(GLM, BudgetParams(think_budget=0), [OPEN]).tokens_until_action() == 0
    assert ThinkState(GLM, BudgetParams(min_think_tokens=2), [OPEN]).tokens_until_action() == 0
    done = ThinkState(GLM, BudgetParams(think_budget=3), [OPEN])
    done.advance_many([30, CLOSE])
    assert done.tokens_until_action() == 0  # the answer may not be empty: EOS is masked once
    done.advance(ANS)
    assert done.tokens_until_action() == 0  # `<answer>` is not an answer token yet
    done.advance(31)
    assert done.tokens_until_action() is None
    unlimited_after_min = ThinkState(GLM, BudgetParams(min_think_tokens=1), [OPEN])
    unlimited_after_min.advance(30)
    assert unlimited_after_min.tokens_until_action() is None
