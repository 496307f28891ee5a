"""The cut-point core (pure) and its HTTP client against the fake server."""

from __future__ import annotations

from ui.client import ChatClient, Settings
from ui.compare_view import Column, summary_html
from budget.cuts import CONTINUE, Cut, cut_messages, plan_cuts, thought_budget
from ui.cut_points import CutClient, cut_settings
from ui.stream import Turn, thinking_prefix
from tests.ui.ui_fake_server import TOKEN_BASE, WORDS


def test_the_thought_is_generated_at_the_largest_budget() -> None:
    assert thought_budget([8, 64, 512]) == 512
    assert thought_budget([8, None, 64]) is None


def test_budgets_below_the_thought_are_cut_the_others_reuse_it() -> None:
    assert plan_cuts([4, 12, None], 12, False) == [
        Cut(4, 4, True, True), Cut(12, 12, False, False), Cut(None, 12, False, False)]
    # The shared thought was itself forced (capped by max tokens): reusing it stays forced.
    assert plan_cuts([4, 512], 110, True) == [Cut(4, 4, True, True), Cut(512, 110, True, False)]


def test_a_cut_is_continued_with_thinking_open_and_budget_zero() -> None:
    question = [{"role": "user", "content": "Hi"}]
    assert cut_messages(question, "Let me") == [
        *question, {"role": "assistant", "content": "<think>Let me"}]
    assert cut_settings(Settings(512, 1024, 0.5, "sys")) == Settings(0, 1024, 0.5, "sys")
    assert CONTINUE == {"continue_final_message": True, "add_generation_prompt": False}


def test_thought_ids_come_from_the_stream_when_complete() -> None:
    turn = Turn()
    for i, word in enumerate(WORDS[:3]):
        turn.feed({"choices": [{"index": 0, "delta": {"reasoning_content": word},
                                "token_ids": [TOKEN_BASE + i]}]})
    turn.feed({"choices": [{"index": 0, "delta": {}, "token_ids": [5, 6]}]})  # the closing
    turn.feed({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop",
                            "thinkcap": {"num_thinking_tokens": 3, "forced_positions": []}}]})
    assert turn.thinking_ids == [TOKEN_BASE, TOKEN_BASE + 1, TOKEN_BASE + 2]
    assert thinking_prefix(turn, 2) == "Let me"
    turn.num_thinking_tokens = 9  # ids missing from the stream: None, tokenize instead
    assert turn.thinking_ids is None


def test_cut_client_round_trips_and_answers_at_the_cut(fake_server) -> None:
    cutter = CutClient(ChatClient(fake_server.api_base))
    ids = cutter.tokenize("Let me look at the picture")
    assert cutter.detokenize(ids[:3]) == "Let me look"
    chunks = list(cutter.answer_at_cut([{"role": "user", "content": "Q"}], "Let me look",
                                       Settings(64, 256, 0.0)))
    turn = Turn()
    for chunk in chunks:
        turn.feed(chunk)
    assert turn.thinking == "" and turn.answer_forced and "Cut after 3 tokens" in turn.answer
    sent = fake_server.requests[-1]
    assert sent["think_budget"] == 0 and sent["continue_final_message"] is True


def test_summary_table_rows() -> None:
    done = Turn(answer="x <|begin_of_box|>7<|end_of_box|>", finish_reason="stop",
                num_thinking_tokens=4, answer_forced=True, answer_tokens=9, last_at=None)
    done.last_at = done.started_at + 1.25
    html = summary_html([Column(4, done), Column(None, Turn())], cut_mode=True)
    assert "<td>Think budget 4</td><td>4</td><td>forced</td><td>9</td><td>7</td><td>1.2 s</td>" in html
    assert "<td>Unlimited thinking</td><td>—</td><td>…</td>" in html
    assert "one thought, cut at each budget" in html
