"""Compare mode in Chromium against the fake server: 2–4 budgets side by side, in parallel."""

from __future__ import annotations

import pytest

from tests.ui.browser_kit import MARKS, send

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
expect = sync_api.expect
expect.set_options(timeout=20_000)  # two shared cores: the page can lag seconds behind


def column(page, i: int):
    return page.locator(f"#tc-compare-{i}")


def open_compare(page, budgets: str) -> None:
    page.get_by_role("tab", name="Compare budgets").click()
    page.locator("#tc-compare-budgets textarea").fill(budgets)


def test_three_budgets_side_by_side(page, shared_fake, media) -> None:
    open_compare(page, "4, 64, unlimited")
    before = len(shared_fake.requests)
    shared_fake.app.state.concurrency.most = 0
    send(page, "How many red circles?", [media.shapes], box="tc-compare-input")
    for i in range(3):
        column(page, i).locator(".tc-stats").wait_for()
    expect(column(page, 3)).to_be_hidden()  # three budgets, three columns

    texts = [column(page, i).inner_text() for i in range(3)]
    assert "Think budget 4" in texts[0] and "Answer forced after 4 thinking tokens" in texts[0]
    assert "Think budget 64" in texts[1]
    assert "Finished thinking on its own after 12 tokens" in texts[1]
    assert "Unlimited thinking" in texts[2] and "unlimited budget" in texts[2]
    for i in range(3):  # boxed answer highlighted, time shown, the picture went with it
        assert column(page, i).locator(".tc-box").inner_text() == "3"
        assert " s · " in column(page, i).locator(".tc-stats").inner_text()
        assert "I see 1 images" in texts[i]
    assert "How many red circles?" in page.locator("#tc-compare-question").inner_text()

    sent = shared_fake.requests[before:]
    assert sorted(r["think_budget"] or 10**9 for r in sent) == [4, 64, 10**9]
    assert shared_fake.app.state.concurrency.most >= 2  # streamed in parallel, not one by one


def test_bad_budgets_are_refused_and_stop_stops_every_column(page) -> None:
    open_compare(page, "8")
    send(page, "Anything", box="tc-compare-input")
    page.get_by_text("Give 2 to 4 budgets").wait_for()
    expect(column(page, 0)).to_be_hidden()

    page.locator("#tc-compare-budgets textarea").fill("300, 400")
    send(page, "slow-thought", box="tc-compare-input")
    for i in range(2):
        column(page, i).get_by_text("Let me look").wait_for()
    page.locator("#tc-compare-input button.stop-button").click()
    for i in range(2):
        column(page, i).get_by_text("Thinking stopped").wait_for()
        expect(column(page, i).get_by_text("Thinking…")).to_have_count(0)
    expect(page.locator("#tc-compare-input button.stop-button")).to_have_count(0)
