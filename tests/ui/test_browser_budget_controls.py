"""The server's budget controls in the Advanced panel (issue 21): grace, wrap-up message and
budget action reach the request only when set, and the reply says how thinking ended
(`close_reason`), in chat and in both Compare modes. Chromium against the fake server."""

from __future__ import annotations

import pytest

from tests.ui.browser_kit import (MARKS, finished_answer, request_for, requests_about, send,
                                  set_number, set_text)
from tests.ui.test_browser_compare import column, compare, open_compare

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
expect = sync_api.expect
expect.set_options(timeout=20_000)  # two shared cores: the page can lag seconds behind

CONTROLS = ("think_budget_grace", "think_budget_message", "think_budget_action")


def set_controls(page, grace: int | None = None, message: str = "", action: str = "") -> None:
    page.locator("#tc-advanced").get_by_text("Advanced").first.click()
    if grace is not None:
        set_number(page, "tc-grace", grace)
    if message:
        set_text(page, "#tc-message textarea", message)
    if action:
        page.locator("#tc-action").get_by_label(action).check()


def test_grace_and_message_reach_the_request_and_the_close_is_named(page, shared_fake) -> None:
    # Unset controls are not sent: the server's own defaults apply.
    send(page, "hi", budget=4)
    finished_answer(page)
    assert not set(CONTROLS) & set(request_for(shared_fake, "hi"))

    set_controls(page, grace=8, message=" So")
    send(page, "hi again", budget=4)
    stats = finished_answer(page, nth=1)
    sent = request_for(shared_fake, "hi again")
    assert (sent["think_budget"], sent["think_budget_grace"], sent["think_budget_message"]) \
        == (4, 8, " So")
    assert "think_budget_action" not in sent  # "Server default"
    # The fake thought ends a sentence at its 10th token: a close inside the grace window.
    expect(stats).to_contain_text("Answer forced after 10 thinking tokens")
    expect(stats).to_contain_text("closed at a sentence end in the grace window, 6 tokens past")
    thought = page.locator("#tc-chat .thought-group .message-content").last
    expect(thought).to_contain_text("carefully So")  # the message ends the thought, inside it

    set_number(page, "tc-grace", 2)  # the panel is still open
    set_text(page, "#tc-message textarea", "")
    send(page, "no sentence end", budget=4)
    stats = finished_answer(page, nth=2)
    expect(stats).to_contain_text("no sentence end in the grace window: cut at its end "
                                  "(budget 4 + grace 2)")
    assert "think_budget_message" not in request_for(shared_fake, "no sentence end")


def test_truncate_says_there_is_no_answer_and_why(page, shared_fake) -> None:
    set_controls(page, action="Stop there, no answer")
    send(page, "hi", budget=4)
    stats = finished_answer(page)
    assert request_for(shared_fake, "hi")["think_budget_action"] == "truncate"
    expect(stats).to_contain_text("Stopped at the budget after 4 thinking tokens, no answer")
    expect(stats).not_to_contain_text("stopped at max tokens")
    expect(page.locator("#tc-chat .tc-note").last).to_contain_text("(truncate)")


def test_compare_independent_applies_them_to_each_sample(page, shared_fake) -> None:
    set_controls(page, grace=8, message=" So")
    open_compare(page, "4, 6", "Independent samples")
    before = len(shared_fake.requests)
    texts = compare(page, "two budgets", columns=2)
    sent = requests_about(shared_fake, "two budgets", before)
    assert len(sent) == 2 and all(r["think_budget_grace"] == 8
                                  and r["think_budget_message"] == " So" for r in sent)
    assert all("closed at a sentence end in the grace window" in t for t in texts)



def test_compare_cut_applies_them_to_the_shared_thought_only(page, shared_fake) -> None:
    """The shared thought (at 8, the largest budget) gets them; the cut at 4 is exact."""
    set_controls(page, grace=8, message=" So")
    open_compare(page, "4, 8")
    before = len(shared_fake.requests)
    texts = compare(page, "cut me", columns=2)
    thought, cut = requests_about(shared_fake, "cut me", before)
    assert (thought["think_budget"], thought["think_budget_grace"]) == (8, 8)
    assert cut["think_budget"] == 0 and not set(CONTROLS) & set(cut)
    assert "Answer forced after 4 thinking tokens" in texts[0]
    assert "cut exactly at the budget" in texts[0]
    # The largest budget keeps its own thought, grace and all (10 tokens, past its 8).
    assert "Answer forced after 10 thinking tokens" in texts[1]
    assert "closed at a sentence end in the grace window, 2 tokens past" in texts[1]
    expect(column(page, 1).locator(".tc-box")).to_have_text("3")
