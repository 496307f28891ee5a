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
_STRAY_CLOSE = re.compile(re.escape(BOX_CLOSE))
NOTE_PREFIX = '<div class="tc-'  # starts the stats line and the error note
# Inline math too: Gradio's default renders only $$…$$, so `$x^2+1$` showed raw and `\(y_1\)`
# lost its backslashes to Markdown.
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "\\[", "right": "\\]", "display": True},
         {"left": "\\(", "right": "\\)", "display": False},
         {"left": "$", "right": "$", "display": False}]


def highlight_box(text: str) -> str:
    # A close marker without an open one (the model's slip) would otherwise show raw.
    return _STRAY_CLOSE.sub("", _BOX_RE.sub(lambda m: _BOX_SPAN.format(m.group(1)), text))


def answer_text(display: str) -> str:
    """The answer as the model wrote it (box markers back), without the notes the demo added."""
    answer = display.split(NOTE_PREFIX, 1)[0]
    return _SPAN_RE.sub(lambda m: BOX_OPEN + m.group(1) + BOX_CLOSE, answer).strip()


def _budget_words(turn: Turn) -> str:
    if turn.think_budget is None:
        # Unlimited still ends where max tokens leaves room for the answer: a limit, not a cap
        # of what was asked, so it is not announced as one.
        room = turn.effective_think_budget
        return "unlimited budget" + ("" if room is None else f" (up to {room} within max tokens)")
    if turn.think_budget != turn.effective_think_budget:
        # The server lowered it to leave room for the answer within max_tokens.
        asked = "unlimited" if turn.think_budget is None else turn.think_budget
        return f"budget {turn.effective_think_budget} (asked {asked}, capped by max tokens)"
    return f"budget {turn.effective_think_budget}"


def _timing_words(turn: Turn) -> list[str]:
    words = [] if turn.seconds is None else [f"{turn.seconds:.1f} s"]
    if (rate := turn.tokens_per_second) is not None:
        words.append(f"{rate:.0f} tokens/s")
    return words


def close_words(turn: Turn) -> str | None:
    """How thinking ended (`close_reason`, docs/api.md) in plain words; None when the headline
    already says it ("model": finished on its own) or the server did not say."""
    past = None
    if turn.num_thinking_tokens is not None and turn.effective_think_budget is not None:
        past = turn.num_thinking_tokens - turn.effective_think_budget
    budget = turn.effective_think_budget
    return {
        "budget": "cut exactly at the budget",
        "boundary": "closed at a sentence end in the grace window"
                    + ("" if past is None else f", {past} tokens past the budget"),
        "grace_limit": "no sentence end in the grace window: cut at its end"
                       + ("" if past is None else f" (budget {budget} + grace {past})"),
        "eos": "the model ended inside its thought",
    }.get(turn.close_reason or "")


def stats_line(turn: Turn) -> str:
    """One line under the answer: why thinking stopped, the answer's size, time and speed.

    The thinking count appears once, in the headline; the budget only when it says more.
    """
    thought = turn.num_thinking_tokens
    truncated = turn.close_reason == "truncated"
    if truncated:
        headline = f"<b>✂ Stopped at the budget after {thought} thinking tokens, no answer</b>"
    elif turn.answer_forced:
        headline = f"<b>⚡ Answer forced after {thought} thinking tokens</b>"
    elif thought is not None:
        headline = f"<b>✓ Finished thinking on its own after {thought} tokens</b>"
    else:
        headline = "<b>✓ Finished thinking on its own</b>"
    parts = [headline]
    if words := close_words(turn):
        parts.append(words)
    if (answered := turn.num_answer_tokens) is not None:
        parts.append(f"{answered} answer tokens")
    if not (turn.answer_forced and turn.think_budget == turn.effective_think_budget):
        parts.append(_budget_words(turn))  # a forced answer's headline already names it
    parts += _timing_words(turn)
    if turn.finish_reason == "length" and not truncated:
        parts.append("stopped at max tokens")
    return f'<div class="tc-stats">{" · ".join(parts)}</div>'


def empty_answer_note(turn: Turn) -> str:
    if turn.close_reason == "truncated":
        why = ("the budget ran out and “When the budget runs out” under Advanced says stop "
               "(truncate), so the server ends the reply there")
    elif turn.finish_reason == "length":
        why = "max tokens ran out before it could answer; raise Max tokens under Advanced"
    else:
        why = "the model ended its turn right after thinking"
    return f'<div class="tc-note">No answer text: {why}.</div>'


def error_note(message: str) -> str:
    return f'<div class="tc-error">⚠ {html.escape(message)}</div>'


def stopped_note(retry: bool = True) -> str:
    # Compare has no Retry button: there, only "compare again" makes sense.
    hint = "Send again, or retry with another budget." if retry else "Compare again to go on."
    return f'<div class="tc-note">Stopped. {hint}</div>'


def meter(turn: Turn) -> str:
    """The live thinking meter: "143 / 256" against the budget, "143 tokens" when unlimited."""
    count = turn.thinking_so_far
    return f"{count} tokens" if turn.meter_budget is None else f"{count} / {turn.meter_budget}"


def thinking_message(turn: Turn, ended: bool) -> dict:
    # Gradio drops a message with no text; a lone ellipsis shows the block is alive.
    message = {"role": "assistant", "content": turn.thinking or "…"}
    seconds = turn.thinking_seconds if turn.timed_thought else None
    # Gradio shows one decimal; a thought that took under 0.05 s still took time, so it shows 0.1, not 0.0.
    duration = {"duration": max(round(seconds, 1), 0.1)} if seconds else {}
    if not ended:  # "pending": a spinner beside the title, the block open
        title = f"Thinking… {meter(turn)}" if turn.thinking_so_far else "Thinking…"
        message["metadata"] = {"title": title, "status": "pending"}
    elif turn.stopped:  # closed: the user chose to stop reading it
        title = f"Thinking stopped at {meter(turn)}" if turn.thinking_so_far else "Thinking stopped"
        message["metadata"] = {"title": title, "status": "done", **duration}
    elif turn.num_thinking_tokens is not None:
        # No status: the block stays open, since seeing the cut-off thought is the point of
        # the demo; status "done" would fold it away. The user can still fold it.
        message["metadata"] = {"title": f"Thought for {turn.num_thinking_tokens} tokens",
                               **duration}
    else:
        message["metadata"] = {"title": "Thinking", **duration}
    return message


def assistant_messages(turn: Turn, error: str | None = None, retry: bool = True) -> list[dict]:
    """The Chatbot messages for one assistant turn, at any point of its stream."""
    messages = []
    ended = turn.answering or error is not None
    if turn.thinking or not ended:
        messages.append(thinking_message(turn, ended))
    body = highlight_box(turn.answer)
    if turn.finished:
        if not turn.answer.strip():
            body += "\n\n" + empty_answer_note(turn)
        body += "\n\n" + stats_line(turn)
    if turn.stopped:
        body += "\n\n" + stopped_note(retry)
    if error:
        body += "\n\n" + error_note(error)
    if body.strip():
        messages.append({"role": "assistant", "content": body.strip()})
    return messages
