"""The demo in a real headless Chromium (Debian's), driven by Playwright.

The fast tests run the page in-process against the fake server; the end-to-end test starts
`thinkcap demo` exactly as a user would, real `thinkcap serve` on the tiny model behind it, and
saves a screenshot (THINKCAP_UPDATE_SCREENSHOT=1 also refreshes docs/demo.png for the README).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ui.app import build_demo, launch_demo
from ui.client import ChatClient
from ui.server_proc import free_port, wait_ready

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
# Without the background-networking flags Chromium keeps calling home, into a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")


@pytest.fixture
def page(tmp_path: Path) -> Iterator:
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1360, "height": 1000})
        yield context.new_page()
        context.close()


def serve_demo(api_base: str, media) -> str:
    """Launch the page in this process (Gradio serves from a thread); return its URL."""
    port = free_port()
    demo = build_demo(ChatClient(api_base), media)
    launch_demo(demo, media, host="127.0.0.1", port=port, block=False)
    return f"http://127.0.0.1:{port}/"


def set_number(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def send(page, text: str, files: list[Path] = (), budget: int | None = None) -> None:
    if budget is not None:
        set_number(page, "tc-budget", budget)
    if files:
        page.set_input_files("#tc-input input[type=file]", [str(f) for f in files])
        # An attachment shows as a thumbnail once uploaded; sending earlier would drop it.
        page.locator("#tc-input .thumbnail-item").first.wait_for()
    page.fill("#tc-input textarea", text)
    page.locator("#tc-input textarea").press("Enter")


def finished_answer(page, timeout_ms: float = 60_000):
    """The stats line of the last answer: it appears once the whole turn has streamed."""
    stats = page.locator("#tc-chat .tc-stats").last
    stats.wait_for(timeout=timeout_ms)
    return stats


def thinking_text(page) -> str:
    """The text of the last thinking block, which stays open once thinking has ended."""
    page.get_by_text("Thought for", exact=False).last.wait_for()
    return page.locator("#tc-chat .thought-group .message-content").last.inner_text()


def test_forced_answer_against_the_fake_server(page, fake_server, media, tmp_path) -> None:
    page.goto(serve_demo(fake_server.api_base, media))
    page.get_by_text("Connected to").wait_for()
    send(page, "How many red circles?", [media.shapes], budget=8)

    stats = finished_answer(page)
    assert "Answer forced after 8 thinking tokens" in stats.inner_text()
    assert page.locator("#tc-chat .tc-box").last.inner_text() == "3"
    assert "I see 1 images" in page.locator("#tc-chat").inner_text()
    assert thinking_text(page).startswith("Let me look at the picture")
    assert fake_server.requests[-1]["think_budget"] == 8
    page.screenshot(path=tmp_path / "demo-fake.png", full_page=True)


def test_video_example_then_unlimited_follow_up(page, fake_server, media) -> None:
    page.goto(serve_demo(fake_server.api_base, media))
    page.get_by_text("Which way does the ball roll?").click()  # an example card: sent at once
    finished_answer(page)
    assert page.locator("#tc-chat video").count() == 1
    assert "I see 0 images, 1 videos in 1 turns" in page.locator("#tc-chat").inner_text()

    page.locator("#tc-unlimited input").check()
    send(page, "Are you sure?")
    page.locator("#tc-chat .tc-stats").nth(1).wait_for()
    stats = page.locator("#tc-chat .tc-stats").last.inner_text()
    assert "Finished thinking on its own" in stats and "unlimited budget" in stats
    assert fake_server.requests[-1]["think_budget"] is None
    assert [m["role"] for m in fake_server.requests[-1]["messages"]] == ["user", "assistant", "user"]


def test_bad_upload_and_dead_server_are_explained(page, media, text_file) -> None:
    page.goto(serve_demo(f"http://127.0.0.1:{free_port()}/v1", media))  # nothing listens there
    page.get_by_text("Cannot reach the model server").first.wait_for()

    send(page, "What is this?", [text_file])
    page.get_by_text("notes.png is neither an image nor a video").wait_for()

    page.locator("#tc-input .thumbnail-item").first.wait_for()  # refused, so still attached
    page.locator("#tc-input button[aria-label^='Remove']").first.click()
    send(page, "Hello?")
    note = page.locator("#tc-chat .tc-error").last
    note.wait_for()
    assert "Cannot reach the model server" in note.inner_text()
    assert "Traceback" not in page.content()


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.timeout(1200)
@pytest.mark.skipif(importlib.util.find_spec("serving.cli") is None,
                    reason="`thinkcap serve` (serving/cli.py) does not exist yet")
def test_thinkcap_demo_end_to_end(page, media, tmp_path) -> None:
    """`thinkcap demo` alone: it starts `thinkcap serve` on the tiny model behind the page."""
    port, log_path = free_port(), tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen([sys.executable, "-m", "thinkcap", "demo", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        # The page answers only after the demo's own server is healthy (minutes on CPU).
        wait_ready(f"http://127.0.0.1:{port}/", timeout=600, alive=lambda: demo.poll() is None)
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Connected to").wait_for(timeout=60_000)
        page.locator("#tc-advanced").get_by_text("Advanced").click()
        set_number(page, "tc-temperature", 0)  # greedy: the tiny model's text is reproducible
        set_number(page, "tc-max-tokens", 64)
        send(page, "How many red circles are in the picture?", [media.shapes], budget=8)

        stats = finished_answer(page, timeout_ms=300_000)
        assert "Answer forced after 8 thinking tokens" in stats.inner_text()
        assert thinking_text(page).strip()
        answer = (page.locator("#tc-chat .message-content")
                  .filter(has=page.locator(".tc-stats")).last.inner_text())
        assert answer.replace(stats.inner_text(), "").strip()  # the answer text above the stats
        page.mouse.move(0, 0)  # no hover highlight in the picture
        page.screenshot(path=tmp_path / "demo.png", full_page=True)
        if os.environ.get("THINKCAP_UPDATE_SCREENSHOT"):  # refresh the README's picture on request only
            shutil.copy(tmp_path / "demo.png", REPO / "docs" / "demo.png")
    finally:
        demo.terminate()  # the demo stops its `thinkcap serve` on SIGTERM
        demo.wait(60)
    # ... and that server is gone with it.
    api_base = re.search(r"Model server ready at (\S+)", log_path.read_text()).group(1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(api_base.removesuffix("/v1") + "/health", timeout=5)

