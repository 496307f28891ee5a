"""The demo's event handlers: take a message from the textbox, stream the model's turn.

Kept apart from the layout (`ui.app`) so they can be driven directly in tests. Whatever goes
wrong ends as a message in the page (a toast for a bad upload, a note in the chat for a server
error): Gradio would otherwise show a bare "Error".
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import gradio as gr

from ui.client import ChatClient, ServerError, Settings
from ui.history import to_openai
from ui.media import MediaError, check_attachments, sniff_media
from ui.render import assistant_messages
from ui.stream import Turn

# Client-side presets for the effort shortcut; the slider then shows the number actually sent.
EFFORT_BUDGETS = {"Low": 256, "Medium": 1024, "High": 4096}


def add_user_message(message: dict | None, history: list[dict]) -> tuple[list[dict], dict]:
    """Move the textbox contents into the chat, or raise `gr.Error` (a toast) and keep them."""
    message = message or {}
    text = (message.get("text") or "").strip()
    files = message.get("files") or []
    if not text and not files:
        raise gr.Error("Type a question, or attach images or a video.", title="Nothing to send")
    try:
        media = [sniff_media(f) for f in files]
        check_attachments(media)
    except MediaError as exc:
        raise gr.Error(str(exc), title="Cannot send this file") from None
    content: list = [{"path": str(m.path)} for m in media] + ([text] if text else [])
    # The textbox is locked until the answer is complete; `unlock_textbox` frees it.
    return [*history, {"role": "user", "content": content}], gr.MultimodalTextbox(
        value=None, interactive=False)


def use_example(history: list[dict], event: gr.SelectData) -> tuple[list[dict], dict]:
    """A click on an example card in the empty chat: send it as if typed."""
    example = event.value or {}
    # Gradio hands example files over as file dicts; their `path` is the file on our disk.
    files = [f["path"] if isinstance(f, dict) else f for f in example.get("files") or []]
    return add_user_message({"text": example.get("text", ""), "files": files}, history)


def unlock_textbox() -> dict:
    return gr.MultimodalTextbox(interactive=True)


def stop_turn(history: list[dict]) -> tuple[list[dict], dict]:
    """The stop button cancels the stream mid-thought; without this its spinner would spin on."""
    def stopped(message: dict) -> dict:
        if (message.get("metadata") or {}).get("status") != "pending":
            return message
        return {**message, "metadata": {"title": "Thinking (stopped)"}}
    return [stopped(m) for m in history], unlock_textbox()


def settings_from_controls(budget: float, unlimited: bool, max_tokens: float,
                           temperature: float) -> Settings:
    return Settings(think_budget=None if unlimited else int(budget),
                    max_tokens=int(max_tokens), temperature=float(temperature))


def respond(client: ChatClient, history: list[dict], budget: float, unlimited: bool,
            max_tokens: float, temperature: float) -> Iterator[list[dict]]:
    """Stream the assistant's turn into the chat: thinking block first, then the answer."""
    settings = settings_from_controls(budget, unlimited, max_tokens, temperature)
    turn = Turn()
    yield [*history, *assistant_messages(turn)]
    try:
        for chunk in client.stream(to_openai(history), settings):
            turn.feed(chunk)
            yield [*history, *assistant_messages(turn)]
    except (ServerError, MediaError) as exc:
        yield [*history, *assistant_messages(turn, error=str(exc))]
        return
    if not turn.finished:
        yield [*history, *assistant_messages(turn, error="The server ended the stream early.")]


def pick_effort(effort: str | None) -> tuple[dict, dict]:
    """An effort preset fills in the budget slider and switches unlimited thinking off."""
    if effort not in EFFORT_BUDGETS:
        return gr.Slider(), gr.Checkbox()
    return gr.Slider(value=EFFORT_BUDGETS[effort], interactive=True), gr.Checkbox(value=False)


def toggle_unlimited(unlimited: bool) -> dict:
    return gr.Slider(interactive=not unlimited)


def server_status(client: ChatClient) -> str:
    """One line under the header: which model answers, or why none does."""
    try:
        return server_status_html(f"Connected to <code>{html.escape(client.model)}</code> at "
                                  f"<code>{html.escape(client.api_base)}</code>", ok=True)
    except ServerError as exc:
        return server_status_html(html.escape(str(exc)), ok=False)


def server_status_html(text: str | None, ok: bool | None = None) -> str:
    state = {True: "ok", False: "down", None: "wait"}[ok]
    text = text or "Connecting to the model server…"
    return f'<span class="tc-dot tc-{state}"></span> {text}'

