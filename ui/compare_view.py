"""What Compare shows: one column per budget (a header over a chat panel), the summary table
above them, and the note for a refused request. Pure rendering, tested without a page."""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass, field

import gradio as gr

from ui.render import BOX_CLOSE, BOX_OPEN, assistant_messages, error_note
from ui.stream import Turn

MAX_COLUMNS = 4
_BOX = re.compile(re.escape(BOX_OPEN) + r"(.*?)(?:" + re.escape(BOX_CLOSE) + r"|$)", re.S)


def column_label(budget: int | None) -> str:
    return "Unlimited thinking" if budget is None else f"Think budget {budget}"


@dataclass
class Column:
    """One budget's column: its turn (in cut mode, several columns may share one), and why it
    has no answer, if so."""

    budget: int | None
    turn: Turn = field(default_factory=Turn)
    error: str | None = None
    thread: threading.Thread | None = None
    cut: bool = False  # answered at a cut of the shared thought

    def messages(self) -> list[dict]:
        return assistant_messages(self.turn, error=self.error, retry=False)


def boxed(turn: Turn) -> str | None:
    if turn.boxed_answer:
        return turn.boxed_answer
    found = _BOX.search(turn.answer)
    return found.group(1).strip() if found else None


def _cell(value) -> str:
    return "—" if value is None else html.escape(str(value))


def summary_row(column: Column) -> str:
    turn = column.turn
    if column.error:
        state = "error"
    elif not turn.finished:
        state = "stopped" if turn.stopped else "…"
    else:
        state = "forced" if turn.answer_forced else "no"
    seconds = None if turn.seconds is None or not turn.finished else f"{turn.seconds:.1f} s"
    thought = turn.num_thinking_tokens if turn.finished else turn.thinking_so_far or None
    cells = [column_label(column.budget), thought, state, turn.num_answer_tokens
             if turn.finished else None, boxed(turn) if turn.finished else None, seconds]
    return "<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in cells) + "</tr>"


def summary_html(columns: list[Column], cut_mode: bool) -> str:
    """Budget → thinking tokens, forced or not, answer tokens, boxed answer, time."""
    how = ("one thought, cut at each budget" if cut_mode
           else "an independent sample per budget")
    head = "".join(f"<th>{h}</th>" for h in ("budget", "thinking tokens", "answer forced",
                                             "answer tokens", "boxed answer", "time"))
    rows = "".join(summary_row(c) for c in columns)
    return (f"<table class='tc-summary'><caption>{how}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def refusal_html(message: str) -> str:
    """A refused Compare, said where the user looks (a toast alone was sometimes missed)."""
    return error_note(message)


def column_outputs(columns: list[Column], first: bool = False) -> list:
    """Updates for the column slots: [column, header, chatbot] each; layout only on the first."""
    updates: list = []
    for i in range(MAX_COLUMNS):
        if i >= len(columns):
            updates += ([gr.Column(visible=False), gr.skip(), gr.Chatbot(value=[])] if first
                        else [gr.skip()] * 3)
        elif first:
            label = f"<div class='tc-col-head'>{column_label(columns[i].budget)}</div>"
            updates += [gr.Column(visible=True), label, columns[i].messages()]
        else:
            updates += [gr.skip(), gr.skip(), columns[i].messages()]
    return updates
