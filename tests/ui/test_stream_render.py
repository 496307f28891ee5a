"""Folding streamed chunks into a turn, and rendering that turn as chat messages."""

from __future__ import annotations

from ui.render import (BOX_CLOSE, BOX_OPEN, answer_text, assistant_messages, highlight_box,
                       stats_line)
from ui.stream import Turn


def delta(index: int = 0, finish: str | None = None, thinkcap: dict | None = None,
          **fields) -> dict:
    choice = {"index": index, "delta": fields, "finish_reason": finish}
    if thinkcap:
        choice["thinkcap"] = thinkcap
    return {"object": "chat.completion.chunk", "choices": [choice]}


def forced_stream() -> list[dict]:
    """A turn as docs/api.md describes it: budget 8 cut the thinking, usage last."""
    stats = {"num_thinking_tokens": 8, "answer_forced": True, "boxed_answer": "3"}
    return [
        delta(role="assistant"),
        delta(reasoning_content="Count the"),
        delta(reasoning_content=" circles"),
        delta(content="There are "),
        delta(content=f"{BOX_OPEN}3{BOX_CLOSE}"),
        {**delta(content=".", finish="stop", thinkcap=stats),
         "thinkcap": {"think_budget": 8, "effective_think_budget": 8}},
        {"choices": [], "usage": {"completion_tokens": 19, "prompt_tokens": 40}},
    ]


def folded(chunks: list[dict]) -> Turn:
    """Fold with a fake clock: the request at t=0, one chunk every 0.5 s."""
    turn = Turn(started_at=0.0)
    for i, chunk in enumerate(chunks, start=1):
        turn.feed(chunk, now=0.5 * i)
    return turn


def test_thinking_and_answer_are_split_and_stats_kept() -> None:
    turn = folded(forced_stream())
    assert turn.thinking == "Count the circles"
    assert turn.answer == f"There are {BOX_OPEN}3{BOX_CLOSE}."
    assert (turn.finish_reason, turn.num_thinking_tokens, turn.answer_forced) == ("stop", 8, True)
    assert (turn.think_budget, turn.effective_think_budget, turn.boxed_answer) == (8, 8, "3")
    assert turn.num_answer_tokens == 19 - 8  # no exact count sent: completion minus thinking
    exact = forced_stream()
    exact[5]["choices"][0]["thinkcap"] = {**exact[5]["choices"][0]["thinkcap"], "num_answer_tokens": 6}
    assert folded(exact).num_answer_tokens == 6  # the server's count wins


def test_reasoning_alias_and_other_choices() -> None:
    turn = folded([delta(reasoning="a"), delta(index=1, content="other choice"),
                   delta(reasoning_content="b", reasoning="b")])  # both names: counted once
    assert (turn.thinking, turn.answer) == ("ab", "")
    assert not turn.answering and turn.num_answer_tokens is None


def test_highlight_and_answer_text_round_trip() -> None:
    raw = f"So {BOX_OPEN}x = 5{BOX_CLOSE}, and {BOX_OPEN}y{BOX_CLOSE}."
    shown = highlight_box(raw)
    assert BOX_OPEN not in shown and shown.count('class="tc-box"') == 2
    assert answer_text(shown) == raw


def test_unclosed_box_is_highlighted_while_streaming() -> None:
    assert highlight_box(f"It is {BOX_OPEN}4") == 'It is <span class="tc-box">4</span>'


def test_stats_line_for_a_forced_answer() -> None:
    turn = folded(forced_stream())
    assert (turn.thinking_seconds, turn.seconds) == (2.0, 3.5)  # to the first answer text; all
    line = stats_line(turn)
    # The count once (the headline), the budget not repeated, time and speed added.
    assert "Answer forced after 8 thinking tokens</b> · 11 answer tokens · 3.5 s · 5 tokens/s" in line
    assert line.count("8 thinking") == 1 and "budget 8" not in line


def test_stats_line_for_natural_stop_unlimited_and_clamped_budgets() -> None:
    natural = Turn(finish_reason="stop", num_thinking_tokens=30, think_budget=None,
                   effective_think_budget=None, completion_tokens=45)
    assert "Finished thinking on its own after 30 tokens" in stats_line(natural)
    assert "unlimited budget" in stats_line(natural)
    clamped = Turn(finish_reason="length", num_thinking_tokens=90, answer_forced=True,
                   think_budget=500, effective_think_budget=90)
    line = stats_line(clamped)
    assert "budget 90 (asked 500, capped by max tokens)" in line
    assert "stopped at max tokens" in line
    clamped.think_budget = None  # unlimited asked, but max_tokens still leaves only 90
    # Issue 21 (9): unlimited is not "capped": it says how far thinking could go.
    assert "unlimited budget (up to 90 within max tokens)" in stats_line(clamped)
    assert "capped" not in stats_line(clamped)


def test_messages_while_thinking_then_finished() -> None:
    chunks = forced_stream()
    thinking = assistant_messages(folded(chunks[:3]))
    assert len(thinking) == 1 and thinking[0]["metadata"]["status"] == "pending"
    assert thinking[0]["content"] == "Count the circles"

    done = assistant_messages(folded(chunks))
    # No spinner, left open; Gradio shows the seconds beside the title.
    assert done[0]["metadata"] == {"title": "Thought for 8 tokens", "duration": 2.0}
    assert "metadata" not in done[1]
    assert "Answer forced after 8 thinking tokens" in done[1]["content"]
    assert answer_text(done[1]["content"]) == folded(chunks).answer  # notes cut off again


def test_a_thought_faster_than_a_tenth_of_a_second_shows_a_tenth_not_zero() -> None:
    turn = Turn(started_at=0.0)
    for i, chunk in enumerate(forced_stream(), start=1):
        turn.feed(chunk, now=0.01 * i)  # the whole stream within 0.07 s
    assert assistant_messages(turn)[0]["metadata"]["duration"] == 0.1


def test_error_before_any_token_is_a_lone_note() -> None:
    [message] = assistant_messages(Turn(), error="Cannot reach <the> server")
    assert "metadata" not in message
    assert message["content"] == '<div class="tc-error">⚠ Cannot reach &lt;the&gt; server</div>'
    assert answer_text(message["content"]) == ""


def test_stray_close_marker_is_not_shown() -> None:
    assert highlight_box(f"It is 4{BOX_CLOSE}.") == "It is 4."
    assert highlight_box(f"{BOX_OPEN}4{BOX_CLOSE} and 5{BOX_CLOSE}") == '<span class="tc-box">4</span> and 5'


def test_empty_answer_and_stop_are_said() -> None:
    empty = Turn(thinking="hmm", finish_reason="length", num_thinking_tokens=50)
    body = assistant_messages(empty)[1]["content"]
    assert "No answer text: max tokens ran out" in body and answer_text(body) == ""
    stopped = Turn(thinking="half", stopped=True)
    thought, note = assistant_messages(stopped)
    assert thought["metadata"]["title"] == "Thinking stopped" and "Stopped" in note["content"]
