"""think_budget_scope "turn" at the door (no engine): which thinking belongs to the turn in each
dialect, the budget left in the params and xargs, the 400 naming the field."""

from __future__ import annotations

import pytest

from serving.dialects import prepare_chat, prepare_messages, prepare_responses
from serving.errors import APIError
from serving.settings import ServerSettings
from serving.turns import apply_turn, pop_scope, turn_thoughts

S = ServerSettings(answer_reserve=16)
CALL = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
CHAT = [
    {"role": "user", "content": "earlier question"},
    {"role": "assistant", "content": "earlier answer", "reasoning_content": "old turn, not counted"},
    {"role": "user", "content": "add 2 and 3"},
    {"role": "assistant", "content": None, "reasoning_content": "first step", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "5"},
    {"role": "assistant", "content": None, "reasoning": "second step", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "5"},
]
ANTHROPIC = [
    {"role": "user", "content": "add 2 and 3"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "first step", "signature": ""},
                                      {"type": "tool_use", "id": "t1", "name": "add", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "5"}]},  # same turn
    {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"},
                                      {"type": "thinking", "thinking": "second step", "signature": ""}]},
]
RESPONSES = [
    {"role": "user", "content": "add 2 and 3"},
    {"type": "reasoning", "id": "r1", "summary": [], "content": [{"type": "reasoning_text", "text": "first step"}]},
    {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "5"},
    {"type": "reasoning", "id": "r2", "summary": [{"type": "summary_text", "text": "second step"}]},
]


@pytest.mark.parametrize(("kind", "key", "items"), [("chat", "messages", CHAT), ("messages", "messages", ANTHROPIC),
                                                    ("responses", "input", RESPONSES)])
def test_the_turn_is_everything_after_the_last_user_message(kind, key, items):
    assert turn_thoughts(kind, {key: items}) == ["first step", "second step"]


def test_a_new_user_message_starts_a_new_turn():
    assert turn_thoughts("chat", {"messages": [*CHAT, {"role": "user", "content": "next"}]}) == []
    assert turn_thoughts("messages", {"messages": [*ANTHROPIC, {"role": "user", "content": "next"}]}) == []


def words(text: str) -> int:  # a stand-in tokenizer: one token per word
    return len(text.split())


def test_turn_scope_takes_the_spent_thinking_off_the_budget_and_min_think():
    body = {"messages": CHAT, "think_budget": 10, "min_think_tokens": 9}
    prep = apply_turn(body, prepare_chat(body, S), words)
    assert (prep.params.think_budget, prep.params.min_think_tokens) == (6, 6)  # 10 - (2 + 2) words
    assert (body["vllm_xargs"]["think_budget"], body["vllm_xargs"]["min_think_tokens"]) == (6, 6)
    assert (prep.requested_budget, prep.turn_thinking_tokens, prep.scope) == (10, 4, "turn")


def test_a_spent_budget_is_zero_and_unlimited_stays_unlimited():
    body = {"messages": ANTHROPIC, "max_tokens": 64, "thinking": {"type": "enabled", "budget_tokens": 3},
            "min_think_tokens": 2}
    prep = apply_turn(body, prepare_messages(body, S), words)
    assert prep.params.think_budget == 0 and "min_think_tokens" not in body["vllm_xargs"]
    body = {"input": RESPONSES, "think_budget": None}
    prep = apply_turn(body, prepare_responses(body, S), words)
    assert prep.params.think_budget is None and prep.requested_budget is None and prep.turn_thinking_tokens == 4


def test_scope_comes_from_the_request_else_the_server_and_a_bad_one_is_a_400():
    body = {"think_budget_scope": "turn"}
    assert pop_scope(body, "request") == "turn" and body == {}
    assert pop_scope({}, "turn") == "turn"
    with pytest.raises(APIError) as err:
        pop_scope({"think_budget_scope": "session"}, "request")
    assert err.value.param == "think_budget_scope" and "'request', 'turn'" in str(err.value)
    assert ServerSettings(think_budget_scope="turn").think_budget_scope == "turn"
