"""Compare in Chromium against the fake server: one thought cut at several budgets (the
default), independent samples, the summary table, readability, refusals and Stop."""

from __future__ import annotations

import pytest

from tests.ui.browser_kit import MARKS, requests_about, send
from tests.ui.ui_fake_server import LONG_BOX, WORDS

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
expect = sync_api.expect
expect.set_options(timeout=20_000)  # two shared cores: the page can lag seconds behind


def column(page, i: int):
    return page.locator(f"#tc-compare-{i}")


def open_compare(page, budgets: str, mode: str | None = None) -> None:
    page.get_by_role("tab", name="Compare budgets").click()
    page.locator("#tc-compare-budgets textarea").fill(budgets)
    if mode:
        page.locator("#tc-compare-mode").get_by_label(mode).check()


def compare(page, text: str, files=(), columns: int = 3) -> list[str]:
    send(page, text, list(files), box="tc-compare-input")
    for i in range(columns):
        column(page, i).locator(".tc-stats").wait_for()
    return [column(page, i).inner_text() for i in range(columns)]


def thought(page, i: int) -> str:
    return column(page, i).locator(".thought-group .message-content").first.inner_text()


def test_one_thought_cut_at_each_budget(page, shared_fake, media) -> None:
    open_compare(page, "4, 8, unlimited")
    before = len(shared_fake.requests)
    texts = compare(page, "How many red circles?", [media.shapes])
    sent = requests_about(shared_fake, "How many red circles?", before)
    # Issue 21 (4): the thought is generated once; 4 and 8 are cuts of it, answered there.
    assert thought(page, 0).split() == "".join(WORDS[:4]).split()
    assert thought(page, 1).split() == "".join(WORDS[:8]).split()
    assert thought(page, 2).startswith("".join(WORDS[:8]))  # the whole thought, 12 tokens
    assert "Answer forced after 4 thinking tokens" in texts[0]
    assert "Answer forced after 8 thinking tokens" in texts[1]
    assert "Finished thinking on its own after 12 tokens" in texts[2]
    assert [column(page, i).locator(".tc-box").inner_text() for i in range(3)] == ["4", "8", "3"]

    assert [r["think_budget"] for r in sent[:1]] == [None]  # the thought, at the largest budget
    cuts = sorted(sent[1:], key=lambda r: len(r["messages"][-1]["content"]))
    assert len(cuts) == 2 and all(r["think_budget"] == 0 and r["continue_final_message"]
                                  and r["add_generation_prompt"] is False for r in cuts)
    assert cuts[0]["messages"][-1] == {"role": "assistant", "content": "<think>Let me look at"}
    assert cuts[0]["messages"][0]["content"][0]["type"] == "image_url"  # the picture goes too

    # The summary table: budget → thinking tokens, forced, answer tokens, boxed answer, time.
    rows = page.locator("#tc-compare-summary tbody tr")
    expect(rows).to_have_count(3)
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(3)]
    assert [c[:3] for c in cells] == [["Think budget 4", "4", "forced"],
                                      ["Think budget 8", "8", "forced"],
                                      ["Unlimited thinking", "12", "no"]]
    assert [c[4] for c in cells] == ["4", "8", "3"] and all(c[5].endswith(" s") for c in cells)
    assert all(int(c[3]) > 0 for c in cells)


def test_independent_samples_side_by_side(page, shared_fake, media) -> None:
    open_compare(page, "4, 64, unlimited", mode="Independent samples")
    before = len(shared_fake.requests)
    shared_fake.app.state.concurrency.most = 0
    texts = compare(page, "How many red circles?", [media.shapes])
    expect(column(page, 3)).to_be_hidden()  # three budgets, three columns
    assert "Think budget 4" in texts[0] and "Answer forced after 4 thinking tokens" in texts[0]
    assert "Think budget 64" in texts[1]
    assert "Finished thinking on its own after 12 tokens" in texts[1]
    assert "Unlimited thinking" in texts[2] and "unlimited budget" in texts[2]
    for i in range(3):  # boxed answer highlighted, time shown, the picture went with it
        assert column(page, i).locator(".tc-box").inner_text() == "3"
        assert " s · " in column(page, i).locator(".tc-stats").inner_text()
        assert "I see 1 images" in texts[i]
    assert "How many red circles?" in page.locator("#tc-compare-question").inner_text()
    sent = requests_about(shared_fake, "How many red circles?", before)
    assert sorted(r["think_budget"] or 10**9 for r in sent) == [4, 64, 10**9]
    assert shared_fake.app.state.concurrency.most >= 2  # streamed in parallel, not one by one


def test_columns_read_at_a_glance(page) -> None:
    """Issue 21 (3): thought from the top and answer in view, labels not over the text, a long
    boxed answer wrapped, not clipped."""
    open_compare(page, "8, unlimited")
    compare(page, "long-thought long-box", columns=2)
    for i in range(2):
        col = column(page, i)
        panel = col.locator(".tc-compare-chat").bounding_box()
        first = col.get_by_text("Let me look", exact=False).first.bounding_box()
        assert panel["y"] <= first["y"] < panel["y"] + panel["height"]  # from the top
        head = col.locator(".tc-col-head").bounding_box()
        assert head["y"] + head["height"] <= panel["y"] + 1  # the label sits above the text
        box = col.locator(".tc-box")
        box_rect = box.bounding_box()
        assert panel["y"] <= box_rect["y"] < panel["y"] + panel["height"]  # the answer in view
        assert box_rect["x"] + box_rect["width"] <= panel["x"] + panel["width"] + 1
        assert box.evaluate("b => b.scrollWidth <= b.clientWidth + 1")
        assert box.inner_text().replace("\n", "") == LONG_BOX


def test_phone_width_stacks_the_columns(browser, demo_url) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(demo_url)
        page.get_by_text("Connected to").wait_for()
        open_compare(page, "4, 8, unlimited")
        compare(page, "How many?")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for i in range(3):
            rect = column(page, i).bounding_box()
            assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 390
    finally:
        page.close()


def test_refusals_are_always_shown_and_stop_stops_every_column(page) -> None:
    open_compare(page, "8")
    note = page.locator("#tc-compare-question .tc-error")
    # Issue 21 (5): every refusal is said above the columns, not only in a toast.
    for budgets, says in [("-3", "“-3” is not a budget"), ("8", "Give 2 to 4 budgets"),
                          ("-3, 8", "“-3” is not a budget"), ("8", "Give 2 to 4 budgets")]:
        page.locator("#tc-compare-budgets textarea").fill(budgets)
        send(page, "Anything", box="tc-compare-input")
        expect(note).to_contain_text(says)
    expect(column(page, 0)).to_be_hidden()

    page.locator("#tc-compare-budgets textarea").fill("300, 400")
    send(page, "slow-thought", box="tc-compare-input")
    for i in range(2):
        column(page, i).get_by_text("Let me look").wait_for()
    expect(column(page, 0).get_by_text("Thinking… ")).to_contain_text(" / 300")  # the meter
    page.locator("#tc-compare-input button.stop-button").click()
    for i in range(2):
        column(page, i).get_by_text("Thinking stopped at").wait_for()
        expect(column(page, i).get_by_text("Thinking…")).to_have_count(0)
        # Issue 21 (9): Compare has no Retry, so its note does not suggest one.
        expect(column(page, i).locator(".tc-note")).to_have_text("Stopped. Compare again to go on.")
    expect(page.locator("#tc-compare-input button.stop-button")).to_have_count(0)
    expect(page.locator("#tc-compare-input button.submit-button")).to_be_visible()
