"""The budget controls of issue 20 at the door: request fields and server defaults → `vllm_xargs`,
400s that name the field (no engine)."""

from __future__ import annotations

import pytest

from budget import build_profile
from serving.dialects import encode_message, prepare_chat, prepare_messages
from serving.errors import APIError
from serving.settings import ServerSettings

S = ServerSettings(answer_reserve=16)
USER = [{"role": "user", "content": "hi"}]


def test_controls_become_xargs_and_defaults_come_from_the_server():
    body = {"messages": USER, "think_budget": 8, "think_budget_grace": 3, "think_budget_action": "force",
            "answer_required": False}
    prep = prepare_chat(body, S)
    assert body["vllm_xargs"] == {"think_budget": 8, "open_thinking": 1, "answer_reserve": 16,
                                  "think_budget_grace": 3, "answer_required": False}
    assert not {"think_budget_grace", "think_budget_action", "answer_required"} & set(body)
    assert (prep.params.grace, prep.params.answer_required) == (3, False)
    server = ServerSettings(think_budget_grace=5, think_budget_action="truncate")
    body = {"messages": USER, "think_budget": 8}
    assert prepare_chat(body, server).params.truncate and body["vllm_xargs"]["think_budget_grace"] == 5


@pytest.mark.parametrize("field", ["think_budget_message", "thinking_budget_message"])
def test_message_is_tokenized_with_the_model_tokenizer(tiny_tokenizer, field):
    profile = build_profile(tiny_tokenizer, model_type="glm4v")
    body = {"model": "m", "max_tokens": 64, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 9},
            field: " Time to answer."}
    prep = encode_message(body, prepare_messages(body, S), lambda t: tiny_tokenizer.encode(t, add_special_tokens=False),
                          profile)
    ids = tiny_tokenizer.encode(" Time to answer.", add_special_tokens=False)
    assert body["vllm_xargs"]["think_budget_message_ids"] == ids and prep.params.message_ids == tuple(ids)
    assert field not in body and "think_budget_message" not in body["vllm_xargs"]


@pytest.mark.parametrize(("extra", "param"), [
    ({"think_budget_grace": -1}, "think_budget_grace"),
    ({"think_budget_grace": True}, "think_budget_grace"),
    ({"think_budget_action": "cut"}, "think_budget_action"),
    ({"answer_required": "yes"}, "answer_required"),
    ({"think_budget_message": ""}, "think_budget_message"),
    ({"think_budget_message": 5}, "think_budget_message"),
    ({"thinking_budget_message": "x" * 3000}, "thinking_budget_message"),
    ({"think_budget_message": "a", "thinking_budget_message": "b"}, "think_budget_message"),
])
def test_bad_controls_are_400s_naming_the_field(extra, param):
    with pytest.raises(APIError) as err:
        prepare_chat({"messages": USER, "think_budget": 8, **extra}, S)
    assert err.value.status == 400 and err.value.param == param


def test_a_message_spelling_the_close_tag_is_refused(tiny_tokenizer):
    profile = build_profile(tiny_tokenizer, model_type="glm4v")
    body = {"messages": USER, "think_budget": 8, "think_budget_message": "done </think>"}
    with pytest.raises(APIError) as err:
        encode_message(body, prepare_chat(body, S), lambda t: tiny_tokenizer.encode(t, add_special_tokens=False), profile)
    assert err.value.param == "think_budget_message"
