"""think_budget_scope "turn" through `thinkcap serve`: a two-step tool loop keeps one budget.

Step 1 thinks and (as an agent would) calls a tool; step 2 sends the conversation back with the
tool's result. The tiny model's random weights never emit a real tool call, so step 1's call is
written by the test around the model's own step-1 thought; the thought is what the turn counts."""

from __future__ import annotations

import pytest

from tests.serving.test_controls_server import post, tok  # noqa: F401 - tok: the model tokenizer fixture

pytestmark = pytest.mark.engine
ASK = {"role": "user", "content": "Add 2 and 3 with the tool."}
TOOL = {"type": "function", "function": {"name": "add", "description": "add two integers",
                                         "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                                                         "b": {"type": "integer"}}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
BUDGET = 20


@pytest.fixture(scope="module")
def step1(server):
    body = {"messages": [ASK], "tools": [TOOL], "max_tokens": 30, "temperature": 0, "think_budget": 8,
            "min_think_tokens": 8, "think_budget_scope": "turn"}
    resp = post(server, "/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["thinkcap"]["budget_left"] == 0 and choice["thinkcap"]["turn_thinking_tokens"] == 0
    return choice["message"]["reasoning_content"]


def spent(tok, thought: str) -> int:
    return len(tok.encode(thought, add_special_tokens=False))


def step2_chat(server, thought: str, scope: str) -> dict:
    messages = [ASK, {"role": "assistant", "content": None, "reasoning_content": thought, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "5"}]
    body = {"messages": messages, "tools": [TOOL], "max_tokens": 40, "temperature": 0, "think_budget": BUDGET,
            "min_think_tokens": BUDGET, "think_budget_scope": scope}
    resp = post(server, "/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_chat_tool_loop_keeps_one_budget(server, tok, step1):
    used = spent(tok, step1)
    assert used > 0
    resp = step2_chat(server, step1, "turn")
    info = resp["choices"][0]["thinkcap"]
    left = BUDGET - used
    assert (info["think_budget_scope"], info["turn_thinking_tokens"], info["think_budget"]) == ("turn", used, left)
    assert resp["thinkcap"]["think_budget"] == BUDGET  # asked; the effective one is what the turn left
    assert (info["num_thinking_tokens"], info["forced_positions"][0], info["close_reason"]) == (left, left, "budget")
    assert info["budget_left"] == 0
    fresh = step2_chat(server, step1, "request")["choices"][0]["thinkcap"]  # the default: a fresh budget
    assert (fresh["think_budget"], fresh["num_thinking_tokens"], fresh["turn_thinking_tokens"]) == (BUDGET, BUDGET, 0)


def test_messages_tool_loop_is_interleaved_thinking(server, tok, step1):
    used = spent(tok, step1)
    messages = [ASK, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": step1, "signature": ""},
        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"}]}]
    body = {"messages": messages, "max_tokens": 40, "temperature": 0, "min_think_tokens": BUDGET,
            "thinking": {"type": "enabled", "budget_tokens": BUDGET}, "think_budget_scope": "turn",
            "tools": [{"name": "add", "description": "add", "input_schema": TOOL["function"]["parameters"]}]}
    resp = post(server, "/v1/messages", body)
    assert resp.status_code == 200, resp.text
    info = resp.json()["thinkcap"]
    assert (info["turn_thinking_tokens"], info["think_budget"], info["num_thinking_tokens"]) == (
        used, BUDGET - used, BUDGET - used)


def test_bad_scope_is_a_400_naming_the_field(server):
    resp = post(server, "/v1/chat/completions", {"messages": [ASK], "think_budget_scope": "session"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "think_budget_scope"
