"""The demo's event handlers, driven directly against the fake server."""

from __future__ import annotations

import gradio as gr
import pytest

from ui.chat import (EFFORT_BUDGETS, add_user_message, pick_effort, respond, server_status,
                     stop_turn)
from ui.client import ChatClient
from ui.render import assistant_messages
from ui.stream import Turn
from ui.server_proc import free_port
from tests.ui.ui_fake_server import MODEL


def ask(client: ChatClient, history: list[dict], text: str, files: list[str] = (),
        budget: int = 8, unlimited: bool = False) -> list[dict]:
    """One round as the page runs it: textbox → chat, then the streamed answer."""
    history, _ = add_user_message({"text": text, "files": list(files)}, history)
    history = gr.Chatbot().preprocess(gr.Chatbot().postprocess(history))
    *_, final = respond(client, history, budget, unlimited, 256, 0.0)
    return final


def test_a_forced_answer_is_streamed_and_labelled(fake_server, media) -> None:
    client = ChatClient(fake_server.api_base)
    history, _ = add_user_message({"text": "How many?", "files": [str(media.shapes)]}, [])
    states = list(respond(client, history, 4, False, 256, 0.0))

    first_thinking = next(s for s in states if len(s) == 2)
    assert first_thinking[1]["metadata"] == {"title": "Thinking…", "status": "pending"}
    thinking, answer = states[-1][1:]
    assert thinking["metadata"] == {"title": "Thought for 4 tokens"}
    assert thinking["content"] == "Let me look at"
    assert "I see 1 images, 0 videos" in answer["content"]
    assert '<span class="tc-box">3</span>' in answer["content"]
    assert "Answer forced after 4 thinking tokens" in answer["content"]


def test_second_turn_resends_answers_but_not_thinking(fake_server, media) -> None:
    client = ChatClient(fake_server.api_base)
    history = ask(client, [], "What is this?", [str(media.video)])
    ask(client, history, "Are you sure?", unlimited=True)

    sent = fake_server.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    previous = sent["messages"][1]["content"]
    assert previous.startswith("I see 0 images, 1 videos") and "<|begin_of_box|>3" in previous
    assert "Let me" not in previous and "tc-stats" not in previous
    assert sent["messages"][0]["content"][0]["type"] == "video_url"
    assert sent["think_budget"] is None


def test_server_error_becomes_a_note_in_the_chat(fake_server) -> None:
    client = ChatClient(fake_server.api_base)
    history, _ = add_user_message({"text": "hi", "files": []}, [])
    *_, final = respond(client, history, 8, False, 4, 0.0)  # max_tokens too small for an answer
    assert "The server rejected the request (400)" in final[-1]["content"]
    assert "Traceback" not in final[-1]["content"]


def test_server_down_becomes_a_note_in_the_chat() -> None:
    client = ChatClient(f"http://127.0.0.1:{free_port()}/v1")
    history, _ = add_user_message({"text": "hi", "files": []}, [])
    *_, final = respond(client, history, 8, False, 256, 0.0)
    assert "Cannot reach the model server" in final[-1]["content"]
    assert "down" in server_status(client)


def test_bad_uploads_are_refused_with_a_toast(text_file, media) -> None:
    with pytest.raises(gr.Error, match="neither an image nor a video"):
        add_user_message({"text": "what is it?", "files": [str(text_file)]}, [])
    with pytest.raises(gr.Error, match="not both"):
        add_user_message({"text": "", "files": [str(media.shapes), str(media.video)]}, [])
    with pytest.raises(gr.Error, match="Type a question"):
        add_user_message({"text": "  ", "files": []}, [])


def test_effort_preset_sets_the_slider(fake_server) -> None:
    slider, checkbox = pick_effort("Medium")
    assert slider.value == EFFORT_BUDGETS["Medium"] and checkbox.value is False
    assert MODEL in server_status(ChatClient(fake_server.api_base))


def test_stop_marks_a_pending_thought_as_stopped() -> None:
    history, _ = add_user_message({"text": "q", "files": []}, [])
    pending = [*history, *assistant_messages(Turn(thinking="half a thought"))]
    stopped, _ = stop_turn(pending)
    assert stopped[-1] == {"role": "assistant", "content": "half a thought",
                           "metadata": {"title": "Thinking (stopped)"}}
    assert stopped[:-1] == pending[:-1]
