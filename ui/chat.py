"""The chat's event handlers: take a message from the textbox, stream the model's turn.

Kept apart from the layout (`ui.app`) so they can be driven directly in tests. Whatever goes
wrong ends as a message in the page, never as Gradio's bare "Error": a refused send is a warning
toast that leaves the conversation and the textbox as they were, a server error is a note in the
chat. A refusal therefore returns `gr.skip()` for the chat and `False` for the `go` flag that the
streaming step reads.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator

import gradio as gr

from ui.client import ChatClient, ServerError, Settings
from ui.controls import TOAST_SECONDS, capped_warning, warn
from ui.history import keep_earlier, to_openai
from ui.media import Media, MediaError, check_attachments, sniff_media
from ui.video_display import display_copy, playable
from ui.render import assistant_messages
from ui.session import Sessions, StopSignal
from ui.stream import Throttle, Turn


def check_message(message: dict | None) -> dict:
    """The textbox contents as chat content, or MediaError with the reason to refuse them."""
    message = message or {}
    text = (message.get("text") or "").strip()
    files = message.get("files") or []
    if not text and not files:
        raise MediaError("Type a question, or attach images or a video.")
    media = [sniff_media(f) for f in files]
    check_attachments(media)
    return {"role": "user", "content": [{"path": str(shown(m))} for m in media] + (
        [text] if text else [])}


def shown(media: Media):
    """The file the chat shows: a converted copy of a video the browser cannot play (the model
    still gets the original, `ui.history`), said in a note since the user may wonder."""
    if media.kind != "video" or playable(media.path, media.mime):
        return media.path
    copy = display_copy(media.path)
    if copy is None:
        return media.path
    gr.Info(f"{media.path.name} uses a video format browsers cannot play, so the chat shows "
            f"{copy[1]}; the model gets the original.", title="Video converted for display",
            duration=TOAST_SECONDS)
    return copy[0]


def turn_box() -> dict:
    """The textbox while a turn streams: typeable, Stop instead of Send."""
    return gr.MultimodalTextbox(value=None, interactive=True, submit_btn=False, stop_btn=True)


def idle_box() -> dict:
    return gr.MultimodalTextbox(interactive=True, submit_btn=True, stop_btn=False)


_refused_at: dict[str, float] = {}  # upload path → when it was refused
REFUSE_ONCE_SECONDS = 5.0


def check_upload(message: dict | None) -> dict:
    """Look at the bytes of each file as it is attached: drop the ones we could not send.

    The textbox reports one upload with two change events, both holding the file: the
    warning is given for the first only (a file attached again later is warned again)."""
    message = message or {}
    kept, problems, now = [], [], time.monotonic()
    for f in message.get("files") or []:
        path = f["path"] if isinstance(f, dict) else f
        try:
            sniff_media(path)
            kept.append(path)
        except MediaError as exc:
            if now - _refused_at.get(path, float("-inf")) > REFUSE_ONCE_SECONDS:
                problems.append(str(exc))
            _refused_at[path] = now
    if len(kept) == len(message.get("files") or []):
        return gr.skip()
    if problems:
        warn(" ".join(problems), "Attachment removed")
    return gr.MultimodalTextbox(value={"text": message.get("text", ""), "files": kept})


def settings_from_controls(budget: float, unlimited: bool, max_tokens: float,
                           temperature: float, system_prompt: str = "",
                           grace: float | None = None, message: str = "",
                           action: str | None = None) -> Settings:
    """An empty grace box, an empty message and the "server default" action are not sent."""
    return Settings(think_budget=None if unlimited else int(budget),
                    max_tokens=int(max_tokens), temperature=float(temperature),
                    system_prompt=system_prompt or "",
                    grace=None if grace is None else max(0, int(grace)),
                    message=message or "",
                    action=action if action in ("force", "truncate") else None)


def stream_turn(client: ChatClient, history: list[dict], settings: Settings,
                signal: StopSignal | None = None,
                throttle: Throttle | None = None) -> Iterator[list[dict]]:
    """The assistant's turn as chat messages, at most ~10 updates a second, the last one exact."""
    throttle = throttle or Throttle()
    turn = Turn(meter_budget=settings.think_budget)
    yield assistant_messages(turn)
    try:
        for chunk in client.stream(to_openai(history), settings, signal):
            turn.feed(chunk)
            if throttle.ready():
                yield assistant_messages(turn)
    except (ServerError, MediaError) as exc:
        yield assistant_messages(turn, error=str(exc))
        return
    if signal is not None and signal.stopped and not turn.finished:
        turn.stopped = True
        yield assistant_messages(turn)
    elif not turn.finished:
        yield assistant_messages(turn, error="The server ended the stream early.")
    else:
        yield assistant_messages(turn)


def server_status_html(text: str | None, ok: bool | None = None) -> str:
    state = {True: "ok", False: "down", None: "wait"}[ok]
    text = text or "Connecting to the model server…"
    return f'<span class="tc-dot tc-{state}"></span> {text}'


class Chat:
    """The handlers that need the server or the page's session; bound methods, so Gradio sees
    their `gr.Request` / event-data annotations (a `functools.partial` would hide them)."""

    def __init__(self, client: ChatClient, sessions: Sessions):
        self.client, self.sessions = client, sessions

    def add_user_message(self, message: dict | None, history: list[dict],
                         request: gr.Request) -> tuple:
        """Move the textbox contents into the chat → (chat, textbox, go)."""
        try:
            user = check_message(message)
        except MediaError as exc:
            warn(str(exc), "Cannot send this")
            return gr.skip(), gr.skip(), False
        if self.sessions.begin(request.session_hash) is None:
            warn("The model is still answering: wait, or press Stop.", "Busy")
            return gr.skip(), gr.skip(), False
        return [*history, user], turn_box(), True

    def use_example(self, history: list[dict], event: gr.SelectData,
                    request: gr.Request) -> tuple:
        """A click on an example card in the empty chat: send it as if typed."""
        example = event.value or {}
        # Gradio hands example files over as file dicts; their `path` is the file on our disk.
        files = [f["path"] if isinstance(f, dict) else f for f in example.get("files") or []]
        return self.add_user_message({"text": example.get("text", ""), "files": files},
                                     history, request)

    def retry_turn(self, history: list[dict], event: gr.RetryData,
                   request: gr.Request) -> tuple:
        """Retry: ask the same question again with the controls as they are now (typically
        another think budget); the answer it replaces stays, folded (`keep_earlier`)."""
        index = event.index if isinstance(event.index, int) else event.index[0]
        users = [i for i, m in enumerate(history[:index + 1]) if m.get("role") == "user"]
        if not users:
            return gr.skip(), gr.skip(), False
        if self.sessions.begin(request.session_hash) is None:
            warn("The model is still answering: wait, or press Stop.", "Busy")
            return gr.skip(), gr.skip(), False
        question = users[-1]
        return ([*history[:question + 1], *keep_earlier(history[question + 1:])], turn_box(),
                True)

    def end_turn(self, request: gr.Request) -> dict:
        """Send instead of Stop again, unless a turn still runs: a newer one (a quick resend
        after Stop), or the one a refused send ("Busy") interrupted. Asked of the page's
        session, not of the `go` flag, which the refused send has overwritten meanwhile: Send
        then never came back."""
        page = self.sessions.get(request.session_hash)
        if page.busy and not page.signal.stopped:
            return gr.skip()
        return idle_box()

    def stop_turn(self, request: gr.Request) -> None:
        """Stop only signals: the streaming generator renders the stopped turn itself."""
        self.sessions.stop(request.session_hash)

    def new_chat(self, request: gr.Request) -> tuple[list, dict]:
        self.sessions.new_chat(request.session_hash)
        return [], gr.MultimodalTextbox(value=None, interactive=True, submit_btn=True,
                                        stop_btn=False)

    def respond(self, history: list[dict], go: bool, budget: float, unlimited: bool,
                max_tokens: float, temperature: float, system_prompt: str,
                grace: float | None, message: str, action: str,
                request: gr.Request) -> Iterator[list[dict]]:
        """Stream the assistant's turn into the chat after an accepted send (`go`)."""
        if not go:
            # Not `return` alone: Gradio takes a generator that yields nothing as an empty chat.
            yield gr.skip()
            return
        session = request.session_hash
        page = self.sessions.get(session)
        signal, chat_id = page.signal, page.chat_id
        try:
            settings = settings_from_controls(budget, unlimited, max_tokens, temperature,
                                              system_prompt, grace, message, action)
            if note := capped_warning(settings, self.client.answer_reserve):
                warn(note, "Budget capped by max tokens")
            for messages in stream_turn(self.client, history, settings, signal):
                if page.chat_id != chat_id:
                    # New chat was pressed. Gradio re-sends a generator's last value when it
                    # ends, so the last value must be the empty chat, not this turn.
                    yield []
                    return
                yield [*history, *messages]
        finally:
            self.sessions.end(session, signal)

    def server_status(self) -> str:
        """One line under the header: which model answers, or why none does. Asked afresh."""
        try:
            model = self.client.check()
        except ServerError as exc:
            return server_status_html(html.escape(str(exc)), ok=False)
        return server_status_html(f"Connected to <code>{html.escape(model)}</code> at "
                                  f"<code>{html.escape(self.client.api_base)}</code>", ok=True)
