"""Compare mode: one question answered at 2–4 think budgets side by side.

Two ways (`MODES`): by default one thought is generated at the largest budget and cut at each
smaller one, the answer forced at every cut (`ui.compare_cut`), so columns differ only by where
the thought was cut; "independent samples" sends one request per budget, in parallel. Stop
closes every stream at once (`ui.session`).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator

import gradio as gr

from ui.chat import check_message, settings_from_controls, turn_box
from ui.client import ChatClient, ServerError, Settings
from ui.compare_cut import stream_cut, wait_columns
from ui.compare_view import MAX_COLUMNS, Column, column_outputs, refusal_html, summary_html
from ui.controls import capped_warning, warn
from ui.cut_points import CutClient
from ui.history import to_openai
from ui.media import MediaError
from ui.session import Sessions, StopSignal
from ui.stream import Turn

DEFAULT_BUDGETS = "8, 64, 512, unlimited"
CUT, INDEPENDENT = "cut", "independent"
MODES = [("One thought, cut at each budget", CUT), ("Independent samples", INDEPENDENT)]


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
            raise ValueError(f"“{word}” is not a budget: use whole numbers ≥ 0 or “unlimited”.")
    if not 2 <= len(budgets) <= MAX_COLUMNS:
        raise ValueError(f"Give 2 to {MAX_COLUMNS} budgets, comma-separated (got {len(budgets)}).")
    if len(set(budgets)) != len(budgets):
        raise ValueError("Each budget once, please: the columns would be the same question twice.")
    return budgets


def question_html(user: dict) -> str:
    text = next((c for c in user["content"] if isinstance(c, str)), "")
    files = [c["path"].rsplit("/", 1)[-1] for c in user["content"] if isinstance(c, dict)]
    attached = f" <span class='tc-files'>with {html.escape(', '.join(files))}</span>" if files else ""
    return f"<div class='tc-question'><b>Q:</b> {html.escape(text)}{attached}</div>"


def _refused(message: str, title: str) -> list:
    warn(message, title)
    return [refusal_html(message), gr.skip(), gr.skip(), *[gr.skip()] * (3 * MAX_COLUMNS)]


def run_independent(column: Column, client: ChatClient, messages: list[dict], settings,
                    signal: StopSignal) -> None:
    """One budget's own request, on its own thread."""
    try:
        for chunk in client.stream(messages, settings, signal):
            column.turn.feed(chunk)
    except (ServerError, MediaError) as exc:
        column.error = str(exc)
    if signal.stopped and not column.turn.finished:
        column.turn.stopped = True
    elif column.error is None and not column.turn.finished:
        column.error = "The server ended the stream early."


class Compare:
    def __init__(self, client: ChatClient, sessions: Sessions):
        self.client, self.sessions = client, sessions
        self.cutter = CutClient(client)

    def run(self, message: dict | None, budgets_text: str, mode: str, max_tokens: float,
            temperature: float, system_prompt: str, grace: float | None, wrap_up: str,
            action: str, request: gr.Request) -> Iterator[list]:
        """Outputs: [question, summary, textbox, *(column, header, chatbot) per slot]. A refusal
        is a note above the columns (and a toast); nothing else changes."""
        try:
            budgets = parse_budgets(budgets_text)
            user = check_message(message)
        except (ValueError, MediaError) as exc:
            yield _refused(str(exc), "Cannot compare")  # a bare return would blank the outputs
            return
        signal = self.sessions.begin(request.session_hash)
        if signal is None:
            yield _refused("The model is still answering: wait, or press Stop.", "Busy")
            return
        def settings(budget: int | None) -> Settings:
            # In cut mode these shape the shared thought only: each cut is exact and answered
            # (`ui.cut_points.cut_settings`).
            return settings_from_controls(budget or 0, budget is None, max_tokens, temperature,
                                          system_prompt, grace, wrap_up, action)

        if notes := [n for b in budgets if (n := capped_warning(settings(b), self.client.answer_reserve))]:
            warn(notes[-1], "Budget capped by max tokens")
        columns = [Column(b, Turn(meter_budget=b)) for b in budgets]
        cut = mode != INDEPENDENT
        head = [question_html(user), summary_html(columns, cut), turn_box()]
        yield [*head, *column_outputs(columns, first=True)]
        try:
            messages = to_openai([user])
            updates = (stream_cut(self.client, self.cutter, signal, messages, columns, settings)
                       if cut else _stream_independent(self.client, signal, messages, columns,
                                                       settings))
            for _ in updates:
                yield [gr.skip(), summary_html(columns, cut), gr.skip(), *column_outputs(columns)]
        finally:
            signal.stop()  # the page went away mid-stream: no thread keeps streaming
            self.sessions.end(request.session_hash, signal)

    def end(self, request: gr.Request) -> dict:
        """Send instead of Stop again, unless a turn still runs (this run was a refused one)."""
        page = self.sessions.get(request.session_hash)
        return gr.skip() if page.busy and not page.signal.stopped else idle_compare_box()


def idle_compare_box() -> dict:
    return gr.MultimodalTextbox(interactive=True, submit_btn="Compare", stop_btn=False)


def _stream_independent(client: ChatClient, signal: StopSignal, messages: list[dict],
                        columns: list[Column], settings) -> Iterator[None]:
    for column in columns:
        column.thread = threading.Thread(target=run_independent, daemon=True,
                                         args=(column, client, messages,
                                               settings(column.budget), signal))
        column.thread.start()
    yield from wait_columns(columns)
