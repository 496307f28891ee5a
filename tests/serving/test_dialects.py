"""Each dialect's budget fields → `vllm_xargs`, with 400s that name the field."""

from __future__ import annotations

import pytest

from serving.dialects import prepare_chat, prepare_completion, prepare_messages, prepare_responses
from serving.errors import APIError
from serving.settings import ServerSettings

S = ServerSettings(answer_reserve=16, structured_answer_reserve=200, default_think_budget=None)


def chat(**body):
    body = {"messages": [{"role": "user", "content": "hi"}], **body}
    return body, prepare_chat(body, S)


def test_chat_budget_fields_become_xargs():
    body, prep = chat(think_budget=8, min_think_tokens=2)
    assert body["vllm_xargs"] == {"think_budget": 8, "min_think_tokens": 2, "open_thinking": 1, "answer_reserve": 16}
    assert "think_budget" not in body and "min_think_tokens" not in body  # vLLM's built-in must not act twice
    # the `thinkcap` object's ids come from the engine (serving.capture): vLLM's response is left as it is
    assert "return_token_ids" not in body and prep.kind == "chat"
    body, _ = chat(thinking_token_budget=3)
    assert body["vllm_xargs"]["think_budget"] == 3 and "thinking_token_budget" not in body


@pytest.mark.parametrize(("effort", "budget"), [("none", 0), ("minimal", 64), ("low", 256), ("medium", 1024),
                                                 ("high", 4096), ("xhigh", 16384), ("max", None)])
def test_every_reasoning_effort(effort, budget):
    body, _ = chat(reasoning_effort=effort)
    assert body["vllm_xargs"].get("think_budget") == budget
    assert body["reasoning_effort"] == effort  # still reaches the chat template, as in vLLM


def test_precedence_and_template_switches():
    body, _ = chat(think_budget=5, reasoning_effort="high")
    assert body["vllm_xargs"]["think_budget"] == 5
    body, _ = chat(chat_template_kwargs={"enable_thinking": False})
    assert body["vllm_xargs"]["think_budget"] == 0
    body, _ = chat(continue_final_message=True, add_generation_prompt=False)
    assert "open_thinking" not in body["vllm_xargs"]  # the client's own prefix is kept


def test_grammar_requests_keep_the_structured_reserve():
    body, _ = chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    assert body["vllm_xargs"]["answer_reserve"] == 200
    body, _ = chat(tools=[], tool_choice="required")
    assert body["vllm_xargs"]["answer_reserve"] == 200
    body, _ = chat(tool_choice="auto")
    assert body["vllm_xargs"]["answer_reserve"] == 16


def test_client_xargs_are_kept_and_merged():
    body, _ = chat(vllm_xargs={"think_budget": 4, "my_key": "v"})
    assert body["vllm_xargs"]["think_budget"] == 4 and body["vllm_xargs"]["my_key"] == "v"


@pytest.mark.parametrize(("body", "param"), [
    ({"think_budget": "ten"}, "think_budget"), ({"think_budget": True}, "think_budget"),
    ({"think_budget": 3, "thinking_token_budget": 4}, "think_budget"),
    ({"think_budget": 2, "min_think_tokens": 5}, "min_think_tokens"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"), ({"n": 99}, "n"),
])
def test_bad_values_name_the_field(body, param):
    with pytest.raises(APIError) as err:
        chat(**body)
    assert err.value.status == 400 and err.value.param == param


def test_other_dialects():
    body = {"prompt": "x<think>", "think_budget": 5}
    prep = prepare_completion(body, S)
    assert body["vllm_xargs"] == {"think_budget": 5, "answer_reserve": 16} and prep.kind == "completion"
    body = {"input": "x", "reasoning": {"effort": "low"}}
    prepare_responses(body, S)
    assert body["vllm_xargs"]["think_budget"] == 256 and body["vllm_xargs"]["open_thinking"] == 1
    body = {"messages": [], "max_tokens": 9, "thinking": {"type": "enabled", "budget_tokens": 7}}
    prepare_messages(body, S)
    assert body["vllm_xargs"]["think_budget"] == 7 and "thinking" not in body
    body = {"messages": [], "max_tokens": 9, "thinking": {"type": "disabled"}}
    prepare_messages(body, S)
    assert body["vllm_xargs"]["think_budget"] == 0
    with pytest.raises(APIError, match="thinking.type"):
        prepare_messages({"messages": [], "thinking": {"type": "maybe"}}, S)


def test_the_prompt_opened_hint_follows_the_servers_template():
    """With the open-thinking template installed, requests that render a generation prompt tell the
    reasoning parser their prompt ends with `<think>`; continued messages, own templates and raw
    completions do not."""
    opens = ServerSettings(prompt_opens_thinking=True)
    messages = [{"role": "user", "content": "hi"}]
    cases = [
        (prepare_chat, {"messages": messages}, True),
        (prepare_chat, {"messages": messages, "continue_final_message": True, "add_generation_prompt": False}, 0),
        (prepare_chat, {"messages": messages, "chat_template": "{{ messages }}"}, False),
        (prepare_responses, {"input": "hi"}, True),
        (prepare_messages, {"messages": messages, "max_tokens": 8}, True),
        (prepare_completion, {"prompt": "hi"}, False),
    ]
    for prepare, body, expected in cases:
        prepare(body, opens)
        assert body["vllm_xargs"].get("prompt_opened_thinking") == (1 if expected is True else None if expected is False else expected), body
    body = {"messages": messages}
    prepare_chat(body, S)  # a server that kept the model's template: no hint
    assert "prompt_opened_thinking" not in body["vllm_xargs"]


@pytest.mark.parametrize(("text", "opened"), [
    ("Sure, the answer", 0), ("<think>let me see", 1), ("<think>a</think><answer>b", 0), ("x</think> y <think>z", 1),
])
def test_a_continued_message_says_whether_it_left_a_thought_open(text, opened):
    """`continue_final_message`: the parser is told whether the client's own text ends inside a thought
    (issue 19.7: without it the non-streaming split guessed and dropped the text before a stray `<think>`)."""
    body = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": text}]}],
            "continue_final_message": True, "add_generation_prompt": False}
    prepare_chat(body, S)
    assert body["vllm_xargs"]["prompt_opened_thinking"] == opened

