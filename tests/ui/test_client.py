"""Request building from the controls, and the openai-SDK client against the fake server."""

from __future__ import annotations

import pytest

from ui.chat import settings_from_controls
from ui.client import ChatClient, ServerError, Settings, build_request
from ui.server_proc import free_port
from ui.stream import Turn
from tests.ui.ui_fake_server import FAIL_WORD, MODEL, NATURAL_THINKING

QUESTION = [{"role": "user", "content": [{"type": "text", "text": "2 + 2?"}]}]


def test_controls_become_a_request() -> None:
    settings = settings_from_controls(budget=8.0, unlimited=False, max_tokens=512.0,
                                      temperature=0.3)
    request = build_request("m", QUESTION, settings)
    assert request["extra_body"] == {"think_budget": 8, "return_token_ids": True}
    assert (request["max_tokens"], request["temperature"]) == (512, 0.3)
    assert request["stream"] and request["stream_options"] == {"include_usage": True}


def test_unlimited_sends_an_explicit_null() -> None:
    settings = settings_from_controls(budget=8.0, unlimited=True, max_tokens=512.0,
                                      temperature=0.3)
    assert build_request("m", QUESTION, settings)["extra_body"]["think_budget"] is None


def run(client: ChatClient, settings: Settings) -> Turn:
    turn = Turn()
    for chunk in client.stream(QUESTION, settings):
        turn.feed(chunk)
    return turn


def test_stream_carries_the_thinkcap_extensions(fake_server) -> None:
    client = ChatClient(fake_server.api_base)
    assert client.model == MODEL  # the first id of /v1/models
    turn = run(client, Settings(think_budget=5, max_tokens=256, temperature=0.0))
    assert (turn.num_thinking_tokens, turn.answer_forced, turn.effective_think_budget) == (5, True, 5)
    assert turn.num_answer_tokens is not None and turn.answer.endswith(".")
    assert fake_server.requests[-1]["think_budget"] == 5

    natural = run(client, Settings(think_budget=None, max_tokens=256, temperature=0.0))
    assert (natural.num_thinking_tokens, natural.answer_forced) == (NATURAL_THINKING, False)
    assert fake_server.requests[-1]["think_budget"] is None


def test_server_rejection_shows_its_message(fake_server) -> None:
    client = ChatClient(fake_server.api_base)
    with pytest.raises(ServerError, match=r"rejected the request \(400\): max_tokens=4 cannot"):
        run(client, Settings(think_budget=8, max_tokens=4, temperature=0.0))


def test_unknown_model_shows_the_404_message(fake_server) -> None:
    client = ChatClient(fake_server.api_base, model="no-such-model")
    with pytest.raises(ServerError, match=r"\(404\): The model `no-such-model` does not exist"):
        run(client, Settings(think_budget=8, max_tokens=64, temperature=0.0))


def test_an_error_mid_stream_keeps_its_message(fake_server) -> None:
    question = [{"role": "user", "content": f"please {FAIL_WORD}"}]
    client, turn = ChatClient(fake_server.api_base), Turn()
    with pytest.raises(ServerError, match="The request failed: generation failed: RuntimeError"):
        for chunk in client.stream(question, Settings(None, 256, 0.0)):
            turn.feed(chunk)
    assert turn.thinking and not turn.finished  # what streamed before the error was kept


def test_server_down_is_a_plain_sentence() -> None:
    api_base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ServerError, match="Cannot reach the model server"):
        ChatClient(api_base).model
    with pytest.raises(ServerError, match="Cannot reach the model server"):
        run(ChatClient(api_base, model="m"), Settings(8, 64, 0.0))
