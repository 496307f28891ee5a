"""Prompt suffixes and the budget plan (no HTTP, no engine)."""

from __future__ import annotations

import pytest

from budget import build_profile
from serving.budget_plan import finalize, requested_budget
from serving.errors import APIError
from serving.prompt import add_budget_suffix, render_chat
from serving.protocol import ChatCompletionRequest, Message
from serving.settings import ServerSettings

BASE = "[gMASK]<sop><|user|>\nhi<|assistant|>\n"


@pytest.fixture(scope="module")
def profile(tiny_tokenizer):
    return build_profile(tiny_tokenizer, model_type="glm4v")


def req(**body) -> ChatCompletionRequest:
    return ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], **body)


@pytest.mark.parametrize(("text", "budget", "applies", "expected"), [
    (BASE, 5, True, BASE + "<think>"),
    (BASE, 0, True, BASE + "<think></think><answer>"),
    (BASE, None, False, BASE),
    (BASE + "<think>", 7, True, BASE + "<think>"),  # a template that already opens thinking
    (BASE + "<think>\n", 0, True, BASE + "<think>\n</think><answer>"),
])
def test_budget_suffix(profile, text, budget, applies, expected):
    prompt = add_budget_suffix(text, profile, budget, applies)
    assert prompt.text == expected and prompt.prefilled_answer == (budget == 0 and applies)


def test_render_chat_uses_the_model_template(tiny_tokenizer):
    messages = [Message(role="system", content="be brief"),
                Message(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}},
                                              {"type": "text", "text": "what?"}])]
    text = render_chat(tiny_tokenizer, messages)
    assert text == "[gMASK]<sop><|system|>\nbe brief<|user|>\n<|begin_of_image|><|image|><|end_of_image|>what?<|assistant|>\n"


def test_requested_budget_precedence():
    settings = ServerSettings(default_think_budget=50, reasoning_effort_budgets={"low": 8})
    assert requested_budget(req(), settings) == 50
    assert requested_budget(req(reasoning_effort="low"), settings) == 8
    assert requested_budget(req(reasoning_effort="low", think_budget=3), settings) == 3
    assert requested_budget(req(think_budget=None), settings) is None  # explicit null = unlimited
    assert requested_budget(req(think_budget=-1), settings) is None
    with pytest.raises(APIError, match="not configured"):
        requested_budget(req(reasoning_effort="high"), settings)


def ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_finalize_fills_max_tokens_from_the_context(profile, tiny_tokenizer):
    prompt = ids(tiny_tokenizer, BASE + "<think>")
    plan = finalize(req(), None, profile, prompt, max_model_len=100, answer_reserve=10)
    assert plan.max_tokens == 100 - len(prompt)
    assert plan.effective == plan.max_tokens - 2 - 10  # the answer keeps its reserve
    assert plan.params.think_budget == plan.effective


def test_finalize_counts_the_model_written_think_tag(profile, tiny_tokenizer):
    plan = finalize(req(max_tokens=40), 100, profile, ids(tiny_tokenizer, BASE), 1000, answer_reserve=8)
    assert plan.effective == 40 - 1 - 2 - 8  # `<think>` will be generated, so it costs a token


def test_finalize_budget_zero_prefilled(profile, tiny_tokenizer):
    prompt = ids(tiny_tokenizer, BASE + "<think></think><answer>")
    plan = finalize(req(max_tokens=10), 0, profile, prompt, 1000, answer_reserve=10)
    assert plan.effective == 0  # nothing to close, so the whole max_tokens is answer


def test_finalize_rejects_impossible_requests(profile, tiny_tokenizer):
    prompt = ids(tiny_tokenizer, BASE + "<think>")
    with pytest.raises(APIError, match="no room for a response") as e:
        finalize(req(), None, profile, prompt, max_model_len=len(prompt), answer_reserve=0)
    assert e.value.param == "messages"
    with pytest.raises(APIError, match="at least 7") as e:
        finalize(req(max_tokens=6), 10, profile, prompt, 1000, answer_reserve=5)
    assert e.value.param == "max_tokens"
    with pytest.raises(APIError, match="cannot exceed") as e:
        finalize(req(max_tokens=20, min_think_tokens=15), None, profile, prompt, 1000, answer_reserve=5)
    assert e.value.param == "min_think_tokens"
