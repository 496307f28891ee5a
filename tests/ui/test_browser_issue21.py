"""The chat's defects of issue 21 in Chromium, against the fake server; one test per defect
(Compare's are in test_browser_compare.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.ui.browser_kit import MARKS, attach, finished_answer, request_for, send, set_number

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
expect = sync_api.expect
expect.set_options(timeout=20_000)  # two shared cores: the page can lag seconds behind


def test_send_comes_back_after_a_busy_refusal(page) -> None:
    """(1) Enter while a reply streams is refused; Send must still come back when it ends."""
    send(page, "slow-thought")
    page.locator("#tc-chat").get_by_text("Thinking…").wait_for()
    send(page, "and this?")
    page.get_by_text("The model is still answering").first.wait_for()
    page.locator("#tc-input button.stop-button").click()
    page.locator("#tc-chat").get_by_text("Thinking stopped").wait_for()
    expect(page.locator("#tc-input button.submit-button")).to_be_visible()
    expect(page.locator("#tc-input button.stop-button")).to_have_count(0)
    send(page, "hello")  # and it sends
    finished_answer(page)


def test_meter_counts_against_the_budget_while_streaming(page) -> None:
    """A live thinking meter: "Thinking… 143 / 256"; a stopped turn keeps its count."""
    send(page, "slow-thought", budget=300)
    meter = page.locator("#tc-chat").get_by_text("Thinking… ")
    expect(meter).to_contain_text(" / 300")
    first = int(meter.inner_text().split("…")[1].split("/")[0])
    expect(meter).not_to_contain_text(f"Thinking… {first} /")  # it moves
    page.locator("#tc-input button.stop-button").click()
    stopped = page.locator("#tc-chat").get_by_text("Thinking stopped at")
    expect(stopped).to_contain_text(" / 300")


def test_out_of_range_numbers_are_explained_not_tracebacks(page, shared_fake, capfd) -> None:
    """(5) 99999 or -5 typed into the think budget: a clear message, the bound used."""
    set_number(page, "tc-budget", 99999)
    page.get_by_text("Think budget 99999 is out of range").wait_for()
    expect(page.locator("#tc-budget input[type=number]")).to_have_value("4096")
    set_number(page, "tc-budget", -5)
    page.get_by_text("Think budget -5 is out of range").wait_for()
    expect(page.locator("#tc-budget input[type=number]")).to_have_value("0")
    send(page, "hi")
    finished_answer(page)
    assert request_for(shared_fake, "hi")["think_budget"] == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]


def test_a_refused_file_is_warned_once(page, text_file) -> None:
    """(5) a file that is not an image or a video: one warning, not two."""
    attach(page, [text_file])
    page.get_by_text("notes.png is neither an image nor a video").first.wait_for()
    expect(page.locator("#tc-input .thumbnail-item")).to_have_count(0)
    page.wait_for_timeout(1500)  # a second warning, if one were sent, arrives by now
    expect(page.get_by_text("notes.png is neither an image nor a video")).to_have_count(1)


def test_inline_math_renders(page) -> None:
    """(6) `$x^2+1$` and `\\(y_1\\)` are typeset, not shown raw or stripped of backslashes."""
    send(page, "math-answer")
    finished_answer(page)
    answer = page.locator("#tc-chat .message-content").filter(has=page.locator(".tc-stats"))
    expect(answer.locator(".katex")).to_have_count(2)
    text = answer.inner_text()
    assert "$x^2" not in text and "(y_1)" not in text


def test_an_mp4v_video_is_shown_converted(page, shared_fake, tmp_path) -> None:
    """(7) an OpenCV `mp4v` MP4 plays in the chat as a converted copy; the model gets the MP4."""
    path = tmp_path / "ball.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8, (96, 64))
    for i in range(8):
        frame = np.full((64, 96, 3), 240, np.uint8)
        cv2.circle(frame, (10 + i * 10, 32), 8, (40, 40, 220), -1)
        writer.write(frame)
    writer.release()
    send(page, "Which way does it roll?", [path])
    page.get_by_text("ball.mp4 uses a video format browsers cannot play").wait_for()
    finished_answer(page)
    video = page.locator("#tc-chat video").last
    assert ".display-" in video.get_attribute("src")
    # Chromium decodes it: the player knows the picture's size (0 for the mp4v original).
    page.wait_for_function("v => v.videoWidth === 96", arg=video.element_handle())
    parts = request_for(shared_fake, "Which way does it roll?")["messages"][-1]["content"]
    assert parts[0]["video_url"]["url"].startswith("data:video/mp4;base64,")


def test_copy_fold_button_and_phone_labels(page, browser, demo_url) -> None:
    """(8) Copy on a turn with no answer copies the note, not the thought; the fold button
    has a name; at 390 px no label covers "Try an example"."""
    send(page, "no-answer")
    finished_answer(page)
    page.locator("#tc-chat button[aria-label='Copy message']").last.click()
    expect(page.locator("#tc-chat button[aria-label='Copied message']")).to_have_count(1)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "No answer text: the model ended its turn right after thinking."
    fold = page.locator("#tc-chat .thought-group .title button").last
    expect(fold).to_have_attribute("aria-label", "Fold the thought")
    fold.click()
    expect(fold).to_have_attribute("aria-label", "Unfold the thought")

    phone = browser.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    try:
        phone.goto(demo_url)
        phone.get_by_text("Connected to").wait_for()
        hint = phone.get_by_text("Try an example").bounding_box()
        labels = phone.locator("#tc-chat label, #tc-chat [data-testid='block-label']")
        for i in range(labels.count()):
            box = labels.nth(i).bounding_box()
            if box and box["width"] and box["height"]:
                apart = (box["y"] + box["height"] <= hint["y"] or hint["y"] + hint["height"] <= box["y"]
                         or box["x"] + box["width"] <= hint["x"] or hint["x"] + hint["width"] <= box["x"])
                assert apart, f"a label covers the placeholder: {labels.nth(i).inner_text()}"
    finally:
        phone.close()


def test_the_same_picture_can_be_attached_again(page, media) -> None:
    """Found while testing Compare in both modes: after a send, picking the same file again
    did nothing (the file input still held it)."""
    send(page, "How many?", [media.shapes])
    finished_answer(page)
    attach(page, [media.shapes])
    expect(page.locator("#tc-input .thumbnail-item")).to_have_count(1)
