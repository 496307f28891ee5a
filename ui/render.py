"""Turn a streamed `Turn` into Chatbot messages, and read an answer back out of one.

An assistant turn is shown as up to two messages in one bubble: a collapsible thinking block
(Gradio renders messages with `metadata.title` as one) and the answer, whose boxed final answer
is highlighted and which ends with a stats line. The stats line and error notes are HTML blocks
with a `tc-` class so `answer_text` can cut them off again: history sends only the answer.
"""

from __future__ import annotations

import html
import re

from ui.stream import Turn

BOX_OPEN, BOX_CLOSE = "<|begin_of_box|>", "<|end_of_box|>"
_BOX_SPAN = '<span class="tc-box">{}</span>'
# An unclosed box (still streaming, or the model stopped) is highlighted to the end of the text.
_BOX_RE = re.compile(re.escape(BOX_OPEN) + r"(.*?)(?:" + re.escape(BOX_CLOSE) + r"|$)", re.S)
_SPAN_RE = re.compile(re.escape(_BOX_SPAN.split("{}")[0]) + r"(.*?)</span>", re.S)
NOTE_PREFIX = '<div class="tc-'  # starts the stats line and the error note


def highlight_box(text: str) -> str:
    return _BOX_RE.sub(lambda m: _BOX_SPAN.format(m.group(1)), text)


def answer_text(display: str) -> str:
    """The answer as the model wrote it (box markers back), without the notes the demo added."""
    answer = display.split(NOTE_PREFIX, 1)[0]
    return _SPAN_RE.sub(lambda m: BOX_OPEN + m.group(1) + BOX_CLOSE, answer).strip()


def _budget_words(turn: Turn) -> str:
    if turn.effective_think_budget is None:
        return "unlimited budget"
    if turn.think_budget != turn.effective_think_budget:
        # The server lowered it to leave room for the answer within max_tokens.
        asked = "unlimited" if turn.think_budget is None else turn.think_budget
        return f"budget {turn.effective_think_budget} (asked {asked}, capped by max tokens)"
    return f"budget {turn.effective_think_budget}"


def stats_line(turn: Turn) -> str:
    """One line under the answer: why thinking stopped, and the token counts."""
    thought = turn.num_thinking_tokens
    if turn.answer_forced:
        headline = f"<b>⚡ Answer forced after {thought} thinking tokens</b>"
    else:
        headline = "<b>✓ Finished thinking on its own</b>"
    counts = [f"{thought} thinking tokens"] if thought is not None else []
    if (answered := turn.num_answer_tokens) is not None:
        counts.append(f"{answered} answer tokens")
    parts = [headline, *counts, _budget_words(turn)]
    if turn.finish_reason == "length":
        parts.append("stopped at max tokens")
    return f'<div class="tc-stats">{" · ".join(parts)}</div>'


def error_note(message: str) -> str:
    return f'<div class="tc-error">⚠ {html.escape(message)}</div>'


def thinking_message(turn: Turn, stopped: bool) -> dict:
    # Gradio drops a message with no text; a lone ellipsis shows the block is alive.
    message = {"role": "assistant", "content": turn.thinking or "…"}
    if not stopped:  # "pending": a spinner beside the title, the block open
        message["metadata"] = {"title": "Thinking…", "status": "pending"}
    elif turn.num_thinking_tokens is not None:
        # No status: the block stays open, since seeing the cut-off thought is the point of
        # the demo; status "done" would fold it away. The user can still fold it.
        message["metadata"] = {"title": f"Thought for {turn.num_thinking_tokens} tokens"}
    else:
        message["metadata"] = {"title": "Thinking"}
    return message


def assistant_messages(turn: Turn, error: str | None = None) -> list[dict]:
    """The Chatbot messages for one assistant turn, at any point of its stream."""
    messages = []
    stopped = turn.answering or error is not None
    if turn.thinking or not stopped:
        messages.append(thinking_message(turn, stopped))
    body = highlight_box(turn.answer)
    if turn.finished:
        body += "\n\n" + stats_line(turn)
    if error:
        body += "\n\n" + error_note(error)
    if body.strip():
        messages.append({"role": "assistant", "content": body.strip()})
    return messages
