"""Stock clients against the real `thinkcap serve`: the openai SDK (chat `.parse` with a pydantic
model, Responses API and its stream), LangChain's ChatOpenAI with a think budget in `extra_body`,
and the Anthropic SDK against `/v1/messages` with `thinking.budget_tokens`."""

from __future__ import annotations

import anthropic
import openai
import pytest
from pydantic import BaseModel

from tests.serving.parity_probes import CLOSE_BIAS

pytestmark = pytest.mark.engine


class Verdict(BaseModel):
    ok: bool


def oai(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0)


def test_openai_parse_gives_thinking_then_schema_json(server):
    """The issue's case: json_schema with think_budget 8 → 8 thinking tokens, then JSON the schema allows.
    max_tokens 300 leaves the grammar-constrained answer its full reserve (--structured-answer-reserve 256)."""
    completion = oai(server).chat.completions.parse(
        model=server.model, messages=[{"role": "user", "content": "Is 2 + 2 = 4?"}], response_format=Verdict,
        max_tokens=300, temperature=1.0, seed=1, extra_body={"think_budget": 8, "logit_bias": CLOSE_BIAS})
    choice = completion.choices[0]
    assert isinstance(choice.message.parsed, Verdict)
    info = choice.model_extra["thinkcap"]
    assert info["num_thinking_tokens"] == 8 and info["answer_forced"] and info["answer_reserve"] == 256
    assert completion.usage.completion_tokens_details.reasoning_tokens == 8
    assert choice.message.model_extra["reasoning_content"]


def test_responses_create_and_stream_carry_reasoning(server):
    client = oai(server)
    resp = client.responses.create(model=server.model, input="Hello", max_output_tokens=60,
                                   reasoning={"effort": "minimal"}, extra_body={"logit_bias": CLOSE_BIAS})
    kinds = [item.type for item in resp.output]
    assert kinds[0] == "reasoning" and "message" in kinds
    assert resp.usage.output_tokens_details.reasoning_tokens == 16  # the test server's "minimal"
    assert resp.output_text
    events = [e.type for e in client.responses.create(
        model=server.model, input="Hello", max_output_tokens=40, stream=True,
        extra_body={"think_budget": 4, "logit_bias": CLOSE_BIAS})]
    assert "response.reasoning_text.delta" in events and "response.output_text.delta" in events
    assert events[-1] == "response.completed"
    assert events.index("response.reasoning_text.delta") < events.index("response.output_text.delta")


def test_langchain_chat_openai_with_a_budget(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, model=server.model, max_tokens=40,
                     max_retries=0, extra_body={"think_budget": 6, "logit_bias": CLOSE_BIAS})
    msg = llm.invoke("What is 2 + 3?")
    assert msg.content  # the answer exists although the thought was cut at 6 tokens
    assert msg.usage_metadata["output_token_details"]["reasoning"] == 6


def test_anthropic_sdk_thinking_budget(server):
    client = anthropic.Anthropic(base_url=server.url, api_key=server.api_key, max_retries=0)
    msg = client.messages.create(model=server.model, max_tokens=40, messages=[{"role": "user", "content": "Hi"}],
                                 thinking={"type": "enabled", "budget_tokens": 6})
    kinds = [block.type for block in msg.content]
    assert kinds[0] == "thinking" and "text" in kinds
    off = client.messages.create(model=server.model, max_tokens=20, messages=[{"role": "user", "content": "Hi"}],
                                 thinking={"type": "disabled"})
    assert [block.type for block in off.content] == ["text"]
