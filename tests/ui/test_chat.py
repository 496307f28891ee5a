"""The demo's event handlers, driven directly against the fake server."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import gradio as gr
import pytest

from ui.chat import Chat, check_message, check_upload, stream_turn
from ui.client import ChatClient, Settings
from ui.controls import (EFFORT_BUDGETS, capped_warning, matching_effort, needed_max_tokens,
                         pick_effort)
from ui.media import MediaError
from ui.session import Sessions
from ui.server_proc import free_port
from ui.stream import Throttle
from tests.ui.ui_fake_server import LONG_THINKING, LONG_WORD, MODEL, SLOW_WORD

PAGE = SimpleNamespace(session_hash="page-1")  # what Gradio passes as `gr.Request`
UNSET = (None, "", "default")  # grace, wrap-up message, budget action: not sent


def chat_for(api_base: str) -> Chat:
    return Chat(ChatClient(api_base), Sessions())


def ask(chat: Chat, history: list[dict], text: str, files: list[str] = (), budget: int = 8,
        unlimited: bool = False, system: str = "") -> list[dict]:
    """One round as the page runs it: textbox → chat, then the streamed answer."""
    history, _, go = chat.add_user_message({"text": text, "files": list(files)}, history, PAGE)
    assert go
    history = gr.Chatbot().preprocess(gr.Chatbot().postprocess(history))
    *_, final = chat.respond(history, go, budget, unlimited, 256, 0.0, system, *UNSET, PAGE)
    return final


def test_a_forced_answer_is_streamed_and_labelled(fake_server, media) -> None:
    chat = chat_for(fake_server.api_base)
    history, _, go = chat.add_user_message({"text": "How many?", "files": [str(media.shapes)]},
                                           [], PAGE)
    states = list(chat.respond(history, go, 4, False, 256, 0.0, "", *UNSET, PAGE))

    first_thinking = states[0][1]
    assert first_thinking["metadata"] == {"title": "Thinking…", "status": "pending"}
    thinking, answer = states[-1][1:]
    assert thinking["metadata"]["title"] == "Thought for 4 tokens"
    assert thinking["metadata"]["duration"] > 0 and "status" not in thinking["metadata"]
    assert thinking["content"] == "Let me look at"
    assert "I see 1 images, 0 videos" in answer["content"]
    assert '<span class="tc-box">3</span>' in answer["content"]
    assert "Answer forced after 4 thinking tokens" in answer["content"]
    assert not chat.sessions.get(PAGE.session_hash).busy  # the page may send again


def test_second_turn_resends_answers_but_not_thinking(fake_server, media) -> None:
    chat = chat_for(fake_server.api_base)
    history = ask(chat, [], "What is this?", [str(media.video)])
    ask(chat, history, "Are you sure?", unlimited=True, system="Answer briefly.")

    sent = fake_server.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "Answer briefly."
    previous = sent["messages"][2]["content"]
    assert previous.startswith("I see 0 images, 1 videos") and "<|begin_of_box|>3" in previous
    assert "Let me" not in previous and "tc-stats" not in previous
    assert sent["messages"][1]["content"][0]["type"] == "video_url"
    assert sent["think_budget"] is None


def test_server_error_becomes_a_note_in_the_chat(fake_server) -> None:
    chat = chat_for(fake_server.api_base)
    history, _, go = chat.add_user_message({"text": "hi", "files": []}, [], PAGE)
    *_, final = chat.respond(history, go, 8, False, 4, 0.0, "", *UNSET, PAGE)  # max_tokens too small
    assert "The server rejected the request (400)" in final[-1]["content"]
    assert "Traceback" not in final[-1]["content"]


def test_server_down_becomes_a_note_and_a_red_status() -> None:
    chat = chat_for(f"http://127.0.0.1:{free_port()}/v1")
    history, _, go = chat.add_user_message({"text": "hi", "files": []}, [], PAGE)
    *_, final = chat.respond(history, go, 8, False, 256, 0.0, "", *UNSET, PAGE)
    assert "Cannot reach the model server" in final[-1]["content"]
    assert "tc-down" in chat.server_status()


def test_status_is_asked_afresh_each_time(fake_server) -> None:
    chat = chat_for(fake_server.api_base)
    assert MODEL in chat.server_status() and "tc-ok" in chat.server_status()
    fake_server.stop()  # the model id is known now; the status must not trust that
    assert "Cannot reach the model server" in chat.server_status()


def test_bad_sends_are_refused_without_touching_the_chat(text_file, media) -> None:
    chat = chat_for("http://127.0.0.1:9/v1")
    history = [{"role": "user", "content": "earlier"}]
    for message in ({"text": "what is it?", "files": [str(text_file)]},
                    {"text": "", "files": [str(media.shapes), str(media.video)]},
                    {"text": "  ", "files": []}):
        chat_out, box_out, go = chat.add_user_message(message, history, PAGE)
        assert go is False and chat_out == gr.skip() and box_out == gr.skip()
    with pytest.raises(MediaError, match="not both"):
        check_message({"text": "", "files": [str(media.shapes), str(media.video)]})
    kept = check_upload({"text": "hi", "files": [str(media.shapes), str(text_file)]})
    assert kept.value["text"] == "hi"
    assert [f["path"].rsplit("/", 1)[-1] for f in kept.value["files"]] == ["shapes.png"]
    assert check_upload({"text": "hi", "files": [str(media.shapes)]}) == gr.skip()


def test_one_turn_at_a_time_per_page(fake_server) -> None:
    chat = chat_for(fake_server.api_base)
    _, _, first = chat.add_user_message({"text": "a", "files": []}, [], PAGE)
    _, _, second = chat.add_user_message({"text": "b", "files": []}, [], PAGE)
    other_page = SimpleNamespace(session_hash="page-2")
    _, _, elsewhere = chat.add_user_message({"text": "c", "files": []}, [], other_page)
    assert (first, second, elsewhere) == (True, False, True)
    chat.stop_turn(PAGE)  # a stopped turn is only rendering its end: a new send may start
    _, _, after_stop = chat.add_user_message({"text": "d", "files": []}, [], PAGE)
    assert after_stop


def test_retry_keeps_the_earlier_answer_folded(fake_server) -> None:
    chat = chat_for(fake_server.api_base)
    history = ask(chat, [], "How many?", budget=4)
    cut, _, go = chat.retry_turn(history, SimpleNamespace(index=len(history) - 1), PAGE)
    assert go and cut[:1] == history[:1] and len(cut) == 2
    earlier = cut[1]  # issue 21: the budget-4 answer stays, folded under its headline
    assert earlier["metadata"] == {"title": "Earlier answer 1 · ⚡ Answer forced after 4 thinking "
                                            "tokens", "status": "done"}
    assert "I see 0 images" in earlier["content"]
    *_, final = chat.respond(cut, go, 64, False, 256, 0.0, "", *UNSET, PAGE)
    assert "Finished thinking on its own after 12 tokens" in final[-1]["content"]
    assert fake_server.requests[-1]["think_budget"] == 64
    assert [m["role"] for m in fake_server.requests[-1]["messages"]] == ["user"]  # not resent
    again, _, _ = chat.retry_turn(gr.Chatbot().preprocess(gr.Chatbot().postprocess(final)),
                                  SimpleNamespace(index=len(final) - 1), PAGE)
    chat.sessions.end(PAGE.session_hash, chat.sessions.get(PAGE.session_hash).signal)
    assert [m["metadata"]["title"][:16] for m in again[1:]] == ["Earlier answer 1",
                                                                "Earlier answer 2"]


def test_stop_ends_the_stream_and_marks_the_thought(fake_server) -> None:
    chat = chat_for(fake_server.api_base)
    history, _, go = chat.add_user_message({"text": SLOW_WORD, "files": []}, [], PAGE)
    states = chat.respond(history, go, 2048, False, 4096, 0.0, "", *UNSET, PAGE)
    next(states), next(states)  # streaming has started
    threading.Timer(0.3, chat.stop_turn, [PAGE]).start()
    *_, final = states
    thinking, note = final[1:]
    assert thinking["metadata"]["title"].startswith("Thinking stopped at ")
    assert thinking["metadata"]["title"].endswith(" / 2048")  # the meter, where it stopped
    assert thinking["metadata"]["status"] == "done"
    assert "Stopped" in note["content"]
    assert not chat.sessions.get(PAGE.session_hash).busy


def test_long_streams_are_throttled_and_exact(fake_server) -> None:
    client = ChatClient(fake_server.api_base)
    question = [{"role": "user", "content": LONG_WORD}]
    states = list(stream_turn(client, question, Settings(None, 4096, 0.0), None, Throttle(0.1)))
    assert len(states) < LONG_THINKING / 10  # not one page update per token
    thinking, answer = states[-1]
    assert thinking["metadata"]["title"] == f"Thought for {LONG_THINKING} tokens"
    assert len(thinking["content"].split()) > LONG_THINKING * 0.7  # the whole thought, at the end


def test_throttle_lets_one_update_through_per_interval() -> None:
    now = [0.0]
    throttle = Throttle(0.1, clock=lambda: now[0])
    seen = []
    for step in range(100):  # 1 s of updates every 10 ms
        now[0] = step * 0.01
        seen.append(throttle.ready())
    assert sum(seen) == 10 and seen[0]


def test_presets_fill_the_slider_and_make_room_in_max_tokens() -> None:
    slider, checkbox, max_tokens = pick_effort("High", 2048)
    assert slider.value == EFFORT_BUDGETS["High"] and checkbox.value is False
    assert max_tokens.value == needed_max_tokens(4096) >= 4096 + 512
    _, checkbox, max_tokens = pick_effort("Unlimited", 2048)
    assert checkbox.value is True and max_tokens.value > 8192
    assert pick_effort("Low", 2048)[2] == gr.skip()  # already room enough
    assert matching_effort(100, False) is None and matching_effort(4096, False) == "High"
    assert matching_effort(4096, True) == "Unlimited"
    assert "lower the think budget of 4096" in capped_warning(Settings(4096, 2048, 0.0))
    assert capped_warning(Settings(8, 64, 0.0)) is None


def test_page_load_fits_the_sliders_without_undoing_a_typed_value() -> None:
    """The load handler reads the sliders' values at page load and answers after the server is asked
    its limits: it sets a value only where that must come down, so a budget typed meanwhile stays
    (a browser test typed 300 and sent 256, the load-time value, on a loaded machine)."""
    from ui.app import fit_controls
    from ui.controls import budget_limit, token_limit

    client = SimpleNamespace(max_model_len=8192)
    budget, max_tokens, _ = fit_controls(client)(256, 1024)
    assert budget.constructor_args == {"maximum": budget_limit(8192)}  # the range only
    assert "value" not in max_tokens.constructor_args and max_tokens.constructor_args["maximum"] == token_limit(8192)
    small = SimpleNamespace(max_model_len=512)
    budget, max_tokens, _ = fit_controls(small)(4096, 4096)
    assert budget.constructor_args["value"] == budget_limit(512) and max_tokens.constructor_args["value"] == token_limit(512)
