"""Shared pieces of the browser tests: Debian's Chromium via Playwright, the page in-process,
and the few gestures the tests repeat (set a number, attach files, send)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.app import build_demo, launch_demo
from ui.client import ChatClient
from ui.server_proc import free_port

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
# Without the background-networking flags Chromium keeps calling home, into a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1360, "height": 1000}

MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def launch_context(playwright, profile: Path, viewport: dict = DESKTOP):
    # Clipboard permissions: the Copy test reads back what the page wrote.
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        viewport=viewport, permissions=["clipboard-read", "clipboard-write"])


def serve_demo(api_base: str, media) -> str:
    """Launch the page in this process (Gradio serves from a thread); return its URL."""
    port = free_port()
    demo = build_demo(ChatClient(api_base), media)
    launch_demo(demo, media, host="127.0.0.1", port=port, block=False)
    return f"http://127.0.0.1:{port}/"


def set_number(page, elem_id: str, value: float) -> None:
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input[type=number]")
    slider = page.locator(f"#{elem_id} input[type=range]")
    # A slider commits a typed number asynchronously, and a number typed before the page has wired its
    # events is dropped (seen under load: 300 typed, 256 sent; 0 typed, the temperature left at 0.8).
    # So where the slider can show the value (an out-of-range one is clamped and explained instead),
    # type it again until it does.
    for attempt in range(3):
        box.fill(str(value))
        box.press("Enter")
        if not slider.count() or not float(slider.get_attribute("min")) <= value <= float(slider.get_attribute("max")):
            return
        try:
            expect(slider).to_have_value(str(int(value)) if float(value).is_integer() else str(value), timeout=5_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def set_text(page, selector: str, text: str) -> None:
    """Type `text` into a text box and make sure it stays. Seen in clean-clone runs: text typed into a
    box of a just-opened panel (the system prompt under Advanced) was put back to "" a moment later, as
    the panel mounted its contents, so the request went without it. A value that is still there after a
    pause has reached the page's state (a remount shows the state's value); otherwise type it again."""
    from playwright.sync_api import expect

    box = page.locator(selector)
    for attempt in range(3):
        box.fill(text)
        page.wait_for_timeout(400)
        try:
            expect(box).to_have_value(text, timeout=2_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def attach(page, files: list[Path], box: str = "tc-input") -> None:
    page.set_input_files(f"#{box} input[type=file]", [str(f) for f in files])


def send(page, text: str, files: list[Path] = (), budget: int | None = None,
         box: str = "tc-input") -> None:
    if budget is not None:
        set_number(page, "tc-budget", budget)
    if files:
        attach(page, files, box)
        # An attachment shows as a thumbnail once uploaded; sending earlier would drop it.
        page.locator(f"#{box} .thumbnail-item").first.wait_for()
    page.fill(f"#{box} textarea", text)
    page.locator(f"#{box} textarea").press("Enter")


def finished_answer(page, timeout_ms: float = 60_000, nth: int | None = None):
    """The stats line of the last (or nth) answer: it appears once the whole turn has streamed."""
    stats = page.locator("#tc-chat .tc-stats")
    stats = stats.last if nth is None else stats.nth(nth)
    stats.wait_for(timeout=timeout_ms)
    return stats


def thinking_text(page) -> str:
    """The text of the last thinking block, which stays open once thinking has ended."""
    page.get_by_text("Thought for", exact=False).last.wait_for()
    return page.locator("#tc-chat .thought-group .message-content").last.inner_text()


def toast_texts(page) -> list[str]:
    return page.locator(".toast-body").all_inner_texts()


def requests_about(fake, text: str, since: int = 0) -> list[dict]:
    """The fake server's requests since index `since` whose messages contain `text`, in arrival
    order. Picking a test's requests by its own prompt, not by position, keeps a late request of an
    earlier test (the shared server outlives each page) out of the count."""
    def mentions(message: dict) -> bool:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"text": content or ""}]
        return any(text in (p.get("text") or "") for p in parts if isinstance(p, dict))

    return [r for r in fake.requests[since:] if any(mentions(m) for m in r.get("messages", []))]


def request_for(fake, prompt: str) -> dict:
    """The fake server's last request whose last user message is `prompt` (its text part, for a
    message with attachments). Not `requests[-1]`: the shared server outlives each page, and a
    late request of an earlier test (a Retry or Compare still streaming when it ended) can be last."""
    def last_user_text(request: dict) -> str:
        users = [m for m in request.get("messages", []) if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        if isinstance(content, list):
            return " ".join(p.get("text") or "" for p in content if isinstance(p, dict)).strip()
        return (content or "").strip()

    matches = [r for r in fake.requests if last_user_text(r) == prompt]
    assert matches, f"no request for {prompt!r} among {len(fake.requests)}"
    return matches[-1]
