"""Compare mode: one question answered at 2–4 think budgets side by side, streamed in parallel.

Each budget gets its own request on its own thread; the page shows one column per budget with
the thought, the answer (boxed answer highlighted) and the stats line, so what the budget
changes is visible at a glance. Stop closes every stream at once (`ui.session`).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import gradio as gr

from ui.chat import check_message, settings_from_controls, turn_box
from ui.client import ChatClient, ServerError
from ui.controls import capped_warning, warn
from ui.history import to_openai
from ui.media import MediaError
from ui.render import assistant_messages
from ui.session import Sessions, StopSignal
from ui.stream import Throttle, Turn

MAX_COLUMNS = 4
DEFAULT_BUDGETS = "8, 64, 512, unlimited"


def parse_budgets(text: str) -> list[int | None]:
    """"8, 64, unlimited" → [8, 64, None]; ValueError with a sentence for the user."""
    words = [w.strip().lower() for w in (text or "").replace(";", ",").split(",") if w.strip()]
    budgets: list[int | None] = []
    for word in words:
        if word in ("unlimited", "none", "inf", "-1"):
            budgets.append(None)
        elif word.isdigit():
            budgets.append(int(word))
        else:
            raise ValueError(f"“{word}” is not a budget: use whole numbers or “unlimited”.")
    if not 2 <= len(budgets) <= MAX_COLUMNS:
        raise ValueError(f"Give 2 to {MAX_COLUMNS} budgets, comma-separated (got {len(budgets)}).")
    if len(set(budgets)) != len(budgets):
        raise ValueError("Each budget once, please: the columns would be the same question twice.")
    return budgets


def column_label(budget: int | None) -> str:
    return "Unlimited thinking" if budget is None else f"Think budget {budget}"


@dataclass
class Column:
    """One budget's request, streamed on its own thread."""

    budget: int | None
    turn: Turn = field(default_factory=Turn)
    error: str | None = None
    thread: threading.Thread | None = None

    def run(self, client: ChatClient, messages: list[dict], settings, signal: StopSignal) -> None:
        try:
            for chunk in client.stream(messages, settings, signal):
                self.turn.feed(chunk)
        except (ServerError, MediaError) as exc:
            self.error = str(exc)
        if signal.stopped and not self.turn.finished:
            self.turn.stopped = True
        elif self.error is None and not self.turn.finished:
            self.error = "The server ended the stream early."

    def messages(self) -> list[dict]:
        return assistant_messages(self.turn, error=self.error)


def question_html(user: dict) -> str:
    text = next((c for c in user["content"] if isinstance(c, str)), "")
    files = [c["path"].rsplit("/", 1)[-1] for c in user["content"] if isinstance(c, dict)]
    attached = f" <span class='tc-files'>with {html.escape(', '.join(files))}</span>" if files else ""
    return f"<div class='tc-question'><b>Q:</b> {html.escape(text)}{attached}</div>"


def _untouched() -> list:
    return [gr.skip()] * (2 + MAX_COLUMNS)


def _outputs(columns: list[Column], first: bool = False) -> list:
    """Chatbot updates for the four column slots; labels and visibility only on the first."""
    updates = []
    for i in range(MAX_COLUMNS):
        if i >= len(columns):
            updates.append(gr.Chatbot(value=[], visible=False) if first else gr.skip())
        elif first:
            updates.append(gr.Chatbot(value=columns[i].messages(), visible=True,
                                      label=column_label(columns[i].budget)))
        else:
            updates.append(columns[i].messages())
    return updates


class Compare:
    def __init__(self, client: ChatClient, sessions: Sessions):
        self.client, self.sessions = client, sessions

    def run(self, message: dict | None, budgets_text: str, max_tokens: float,
            temperature: float, system_prompt: str, request: gr.Request) -> Iterator[list]:
        """Outputs: [question, textbox, *column chatbots]. A refusal is a toast, no update."""
        try:
            budgets = parse_budgets(budgets_text)
            user = check_message(message)
        except (ValueError, MediaError) as exc:
            warn(str(exc), "Cannot compare")
            yield _untouched()  # a generator that yields nothing would blank the outputs
            return
        signal = self.sessions.begin(request.session_hash)
        if signal is None:
            warn("The model is still answering: wait, or press Stop.", "Busy")
            yield _untouched()
            return
        try:
            yield from _stream_columns(self.client, signal, user, budgets, max_tokens,
                                       temperature, system_prompt)
        finally:
            signal.stop()  # the page went away mid-stream: no thread keeps streaming
            self.sessions.end(request.session_hash, signal)


def _stream_columns(client: ChatClient, signal: StopSignal, user: dict,
                    budgets: list[int | None], max_tokens: float, temperature: float,
                    system_prompt: str) -> Iterator[list]:
    columns = [Column(b) for b in budgets]
    yield [question_html(user), turn_box(), *_outputs(columns, first=True)]
    messages = to_openai([user])
    warned = False
    for column in columns:
        settings = settings_from_controls(column.budget or 0, column.budget is None, max_tokens,
                                          temperature, system_prompt)
        if (note := capped_warning(settings)) and not warned:
            warn(note, "Budget capped by max tokens")
            warned = True
        column.thread = threading.Thread(target=column.run, daemon=True,
                                         args=(client, messages, settings, signal))
        column.thread.start()
    throttle = Throttle()
    while any(c.thread.is_alive() for c in columns):
        time.sleep(0.02)
        if throttle.ready():
            yield [gr.skip(), gr.skip(), *_outputs(columns)]
    yield [gr.skip(), gr.skip(), *_outputs(columns)]  # exact, after every stream has ended
