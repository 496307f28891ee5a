"""Property tests of the budget state machine over arbitrary token streams and budgets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import BudgetParams, Phase, ThinkProfile, ThinkState, hidden_ids, output_side, replay, split_output

OPEN, CLOSE, ANS, ANS_END, EOS = 10, 11, 12, 13, 0
GLM = ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS}), answer_open_id=ANS, answer_close_id=ANS_END)
GENERIC = ThinkProfile("generic", OPEN, CLOSE, (CLOSE,), frozenset({EOS}))
PROFILES = st.sampled_from([GLM, GENERIC])
# Ordinary tokens plus the special ones, so streams can open/close thinking and end at will.
TOKENS = st.one_of(st.integers(20, 60), st.sampled_from([OPEN, CLOSE, ANS, EOS]))
BUDGETS = st.one_of(st.none(), st.integers(0, 30))


def run(profile: ThinkProfile, params: BudgetParams, prompt: list[int], model_stream: list[int]):
    """Drive the state as an engine would: forced tokens override the model's own choice."""
    state = ThinkState(profile, params, prompt)
    emitted: list[int] = []
    stream = iter(model_stream)
    for _ in range(len(model_stream) + len(profile.closing_ids) + len(params.message_ids) + 5):
        forced = state.forced_token()
        if forced is None:
            tok = next(stream, None)
            if tok is None:
                break
            if tok in state.suppressed_ids():
                tok = 42  # the engine masked it; any allowed id will do
        else:
            tok = forced
        emitted.append(tok)
        state.advance(tok)
        if tok == EOS and forced is None and state.phase != Phase.THINKING:
            break
    return state, emitted


def thinking_len(profile: ThinkProfile, prompt_opens: bool, emitted: list[int]) -> tuple[int, bool]:
    """Independent count: tokens strictly inside the first <think> ... </think> of the output."""
    inside, count = prompt_opens, 0
    for tok in emitted:
        if not inside:
            if tok == OPEN and count == 0:
                inside = True
            continue
        if tok in (CLOSE, EOS):
            return count, True
        count += 1
    return count, False


@settings(max_examples=400, deadline=None)
@given(profile=PROFILES, budget=BUDGETS, prompt_opens=st.booleans(), stream=st.lists(TOKENS, max_size=80))
def test_thinking_never_exceeds_budget_and_forced_positions_exact(profile, budget, prompt_opens, stream):
    prompt = [1, 2, OPEN] if prompt_opens else [1, 2]
    state, emitted = run(profile, BudgetParams(think_budget=budget), prompt, stream)
    n_think, closed = thinking_len(profile, prompt_opens, emitted)
    assert state.num_thinking_tokens == n_think
    if budget is not None:
        assert n_think <= budget
    # Forced positions are exactly where the closing sequence was emitted after running out.
    if state.answer_forced:
        assert budget is not None and n_think == budget
        start = state.forced_positions[0]
        assert emitted[start : start + len(profile.closing_ids)] == list(profile.closing_ids)
        assert state.forced_positions == list(range(start, start + len(profile.closing_ids)))
    else:
        assert state.forced_positions == [] or state.phase == Phase.CLOSING


@settings(max_examples=300, deadline=None)
@given(profile=PROFILES, budget=st.integers(0, 20), natural=st.integers(0, 40))
def test_closing_forced_exactly_once_and_never_when_model_closes(profile, budget, natural):
    """The model thinks `natural` tokens then closes by itself; then answers for a while."""
    stream = [30] * natural + [CLOSE, ANS] + [31] * 10 + [OPEN] + [32] * 30 + [CLOSE]
    state, emitted = run(profile, BudgetParams(think_budget=budget), [OPEN], stream)
    closes = [i for i, t in enumerate(emitted) if t == CLOSE]
    if natural < budget:
        assert not state.answer_forced and state.forced_positions == []
        assert state.num_thinking_tokens == natural
    else:  # ran out: forced once, at position `budget`, never again even if <think> reappears later
        assert state.answer_forced
        assert state.forced_positions == list(range(budget, budget + len(profile.closing_ids)))
        assert closes[0] == budget
    assert state.phase == Phase.ANSWER


@given(profile=PROFILES, budget=st.integers(0, 15), stream=st.lists(st.integers(20, 60), min_size=40, max_size=60))
def test_replay_reproduces_live_run(profile, budget, stream):
    params = BudgetParams(think_budget=budget, message_ids=(50, 51))
    live, emitted = run(profile, params, [OPEN], stream)
    again = replay(profile, params, [OPEN], emitted)
    assert again.forced_positions == live.forced_positions
    assert again.num_thinking_tokens == live.num_thinking_tokens == budget
    seg = split_output(again, emitted)
    assert len(seg.reasoning_ids) == budget and seg.answer_forced
    assert seg.answer_ids == [t for t in emitted[budget + len(profile.closing_ids) :] if t not in (ANS, EOS)]


@given(profile=PROFILES, budget=BUDGETS, prompt=st.sampled_from([[OPEN], [1], [OPEN, CLOSE, ANS]]),
       stream=st.lists(TOKENS, max_size=60))
def test_live_routing_matches_split_output(profile, budget, prompt, stream):
    """The server's stream splitter routes each id as it arrives; once thinking has started (or
    can no longer start), that must agree with `split_output` on the finished output."""
    state, emitted = run(profile, BudgetParams(think_budget=budget), prompt, stream)
    hidden = hidden_ids(profile)
    live = ThinkState(profile, BudgetParams(think_budget=budget), prompt)
    routed: dict[str, list[int]] = {"reasoning": [], "answer": []}
    for pos, tok in enumerate(emitted):
        live.advance(tok)
        side = output_side(live, pos, tok, hidden)
        if side is not None and (live.think_start is None) == (state.think_start is None):
            routed[side].append(tok)
        elif side is not None:  # before the model opened <think> itself: only the live view sees it
            assert side == "answer" and pos < state.think_start
    seg = split_output(state, emitted)
    assert (routed["reasoning"], routed["answer"]) == (seg.reasoning_ids, seg.answer_ids)


def test_budget_zero_forces_immediately_and_unlimited_forces_nothing():
    state, emitted = run(GLM, BudgetParams(think_budget=0), [OPEN], [30] * 5)
    assert emitted[:2] == [CLOSE, ANS] and state.forced_positions == [0, 1] and state.num_thinking_tokens == 0
    state, emitted = run(GLM, BudgetParams(think_budget=None), [OPEN], [30] * 50)
    assert state.forced_positions == [] and state.num_thinking_tokens == 50


def test_thinking_opened_by_model_counts_after_open_tag():
    state, emitted = run(GLM, BudgetParams(think_budget=3), [1], [40, 41, OPEN, 30, 30, 30, 30, 30])
    assert emitted[:8] == [40, 41, OPEN, 30, 30, 30, CLOSE, ANS]
    assert state.forced_positions == [6, 7] and state.think_start == 3 and state.think_end == 6


def test_history_with_closed_thinking_does_not_disable_budget():
    prompt = [OPEN, 30, CLOSE, ANS, 31, 2, 3]  # an earlier turn, then a new generation prompt
    state, emitted = run(GLM, BudgetParams(think_budget=2), prompt, [OPEN, 30, 30, 30, 30])
    assert state.answer_forced and emitted[:5] == [OPEN, 30, 30, CLOSE, ANS]


def test_prompt_with_closing_prefilled_is_answer_phase():
    state = ThinkState(GLM, BudgetParams(think_budget=0), [OPEN, CLOSE, ANS])
    assert state.phase == Phase.ANSWER and state.finished and state.forced_token() is None


def test_transition_is_forced_inside_budget_then_closing():
    params = BudgetParams(think_budget=5, message_ids=(50, 51))
    state, emitted = run(GLM, params, [OPEN], [30] * 20)
    assert emitted[:7] == [30, 30, 30, 50, 51, CLOSE, ANS]
    assert state.forced_positions == [3, 4, 5, 6] and state.num_thinking_tokens == 5
    # a budget shorter than the transition skips it instead of overrunning
    state, emitted = run(GLM, BudgetParams(think_budget=1, message_ids=(50, 51)), [OPEN], [30] * 5)
    assert emitted[:3] == [30, CLOSE, ANS]


def test_min_think_suppresses_close_and_forces_continuation():
    params = BudgetParams(think_budget=10, min_think_tokens=4, continuation_ids=(60, 61))
    state = ThinkState(GLM, params, [OPEN])
    state.advance(30)
    assert state.suppressed_ids() == {CLOSE, EOS}
    assert state.request_continuation() == 60  # the model wanted to stop at 1 < 4 thinking tokens
    state.advance(60)
    assert state.forced_token() == 61
    state.advance(61)
    assert state.num_thinking_tokens == 3 and state.forced_positions == [1, 2]
    state.advance(30)
    assert state.suppressed_ids() == frozenset()  # minimum reached: the model may close now
    state.advance(CLOSE)
    assert state.phase == Phase.ANSWER and not state.answer_forced


def test_continuation_truncated_to_budget():
    params = BudgetParams(think_budget=3, min_think_tokens=3, continuation_ids=(60, 61, 62, 63))
    state, emitted = run(GLM, params, [OPEN], [30, CLOSE, 30, 30, 30])
    state2 = ThinkState(GLM, params, [OPEN])
    state2.advance(30)
    assert state2.request_continuation() == 60
    state2.advance_many([60, 61])
    assert state2.forced_token() == CLOSE and state2.num_thinking_tokens == 3
    assert state.num_thinking_tokens <= 3


@pytest.mark.parametrize("seed", range(5))
def test_random_long_streams_many_requests(seed):
    """Many interleaved requests, as in a batch: each state only sees its own tokens."""
    rng = random.Random(seed)
    budgets = [rng.choice([None, 0, 1, 5, 20]) for _ in range(16)]
    states = [ThinkState(GLM, BudgetParams(think_budget=b), [OPEN]) for b in budgets]
    for _ in range(40):
        for state in states:
            forced = state.forced_token()
            state.advance(forced if forced is not None else rng.randint(20, 60))
    for b, state in zip(budgets, states):
        assert state.num_thinking_tokens == (40 if b is None else b)
        assert state.forced_positions == ([] if b is None else [b, b + 1])
