"""Chat history → OpenAI messages, on messages that went through Gradio's own Chatbot."""

from __future__ import annotations

import base64

import gradio as gr
import pytest

from ui.history import to_openai
from ui.media import MediaError
from ui.render import BOX_CLOSE, BOX_OPEN, assistant_messages
from ui.stream import Turn


def through_chatbot(messages: list[dict]) -> list[dict]:
    """What an event handler receives after the page held `messages`."""
    chatbot = gr.Chatbot()
    return chatbot.preprocess(chatbot.postprocess(messages))


def finished_turn(answer: str) -> list[dict]:
    turn = Turn(thinking="secret reasoning", answer=answer, finish_reason="stop",
                num_thinking_tokens=5, answer_forced=True, effective_think_budget=5,
                completion_tokens=12)
    return assistant_messages(turn)


def test_only_answers_go_back_and_media_become_data_urls(media) -> None:
    history = through_chatbot([
        {"role": "user", "content": [{"path": str(media.shapes)}, {"path": str(media.shapes_more)},
                                     "Which has more circles?"]},
        *finished_turn(f"The second: {BOX_OPEN}2 more{BOX_CLOSE}."),
        {"role": "user", "content": [{"path": str(media.video)}, "And this?"]},
    ])
    first, answer, second = to_openai(history)

    assert [p["type"] for p in first["content"]] == ["image_url", "image_url", "text"]
    url = first["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == media.shapes_more.read_bytes()
    assert first["content"][2] == {"type": "text", "text": "Which has more circles?"}

    # No thinking, no stats line: the answer as the model wrote it, box markers included.
    assert answer == {"role": "assistant", "content": f"The second: {BOX_OPEN}2 more{BOX_CLOSE}."}

    assert second["content"][0]["type"] == "video_url"
    assert second["content"][0]["video_url"]["url"].startswith("data:video/")


def test_failed_turns_vanish_and_their_questions_merge() -> None:
    history = through_chatbot([
        {"role": "user", "content": "first try"},
        *assistant_messages(Turn(), error="Cannot reach the server"),
        {"role": "user", "content": "second try"},
    ])
    assert to_openai(history) == [{"role": "user", "content": [
        {"type": "text", "text": "first try"}, {"type": "text", "text": "second try"}]}]


def test_interrupted_thinking_is_not_sent() -> None:
    partial = assistant_messages(Turn(thinking="half a thought"), error="stopped")
    history = through_chatbot([{"role": "user", "content": "q"}, *partial])
    assert [m["role"] for m in to_openai(history)] == ["user"]


def test_an_attachment_deleted_since_is_reported(tmp_path) -> None:
    gone = tmp_path / "gone.png"
    gone.write_bytes(b"x")
    history = through_chatbot([{"role": "user", "content": [{"path": str(gone)}, "q"]}])
    gone.unlink()
    with pytest.raises(MediaError, match="gone.png"):
        to_openai(history)
