"""`thinkcap demo` end to end in Chromium: real `thinkcap serve` on the tiny model behind it.

Saves screenshots of the chat and of Compare; THINKCAP_UPDATE_SCREENSHOT=1 also refreshes
docs/demo.png for the README (on request only). docs/img/demo_compare.png shows a trained policy
instead (docs/demo.md says how it was taken), so the tiny model's Compare stays in tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest

from ui.server_proc import free_port, wait_ready
from tests.ui.browser_kit import MARKS, REPO, finished_answer, send, set_number, thinking_text

pytestmark = [*MARKS, pytest.mark.slow, pytest.mark.engine, pytest.mark.timeout(1200),
              pytest.mark.skipif(importlib.util.find_spec("serving.cli") is None,
                                 reason="`thinkcap serve` (serving/cli.py) does not exist yet")]


def keep_screenshot(page, tmp_path, name: str, target: str | None = None) -> None:
    page.mouse.move(0, 0)  # no hover highlight in the picture
    page.screenshot(path=tmp_path / name, full_page=True)
    if target and os.environ.get("THINKCAP_UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / name, REPO / target)


def chat_round(page, media, tmp_path) -> None:
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
    keep_screenshot(page, tmp_path, "demo.png", "docs/demo.png")


def compare_columns(page, media, mode: str) -> list[str]:
    page.locator("#tc-compare-mode").get_by_label(mode).check()
    page.locator("#tc-compare-budgets textarea").fill("4, 16, 32")
    send(page, "How many red circles are in the picture?", [media.shapes],
         box="tc-compare-input")
    stats = [page.locator(f"#tc-compare-{i} .tc-stats") for i in range(3)]
    for line in stats:
        line.wait_for(timeout=300_000)
    for budget, line in zip((4, 16, 32), stats):
        text = line.inner_text()  # forced at the budget, or finished on its own below it
        forced = re.search(r"Answer forced after (\d+) thinking tokens", text)
        natural = re.search(r"on its own after (\d+) tokens", text)
        assert (forced and int(forced.group(1)) == budget) or (natural and
                                                               int(natural.group(1)) <= budget)
    rows = page.locator("#tc-compare-summary tbody tr")
    assert rows.count() == 3 and all(rows.nth(i).locator("td").count() == 6 for i in range(3))
    return [page.locator(f"#tc-compare-{i} .thought-group .message-content").first.inner_text()
            for i in range(3)]


def compare_round(page, media, tmp_path) -> None:
    page.get_by_role("tab", name="Compare budgets").click()
    # One thought cut at 4, 16 and 32 tokens (the default): each column's thought is the
    # start of the next one's, and the answers are forced by the real server at each cut.
    thoughts = [t.split() for t in compare_columns(page, media, "One thought, cut at each budget")]
    for short, long in zip(thoughts, thoughts[1:]):
        head = short[:-1]  # the last word may be a character cut in half
        assert long[:len(head)] == head
    keep_screenshot(page, tmp_path, "demo_compare.png")  # the docs show a trained policy
    compare_columns(page, media, "Independent samples")


def test_thinkcap_demo_end_to_end(browser, media, tmp_path) -> None:
    """`thinkcap demo` alone: it starts `thinkcap serve` on the tiny model behind the page."""
    port, log_path = free_port(), tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen([sys.executable, "-m", "thinkcap", "demo", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    page = browser.new_page()
    try:
        # The page answers only after the demo's own server is healthy (minutes on CPU).
        wait_ready(f"http://127.0.0.1:{port}/", timeout=600, alive=lambda: demo.poll() is None)
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Connected to").wait_for(timeout=60_000)
        chat_round(page, media, tmp_path)
        compare_round(page, media, tmp_path)
    finally:
        page.close()
        demo.terminate()  # the demo stops its `thinkcap serve` on SIGTERM
        demo.wait(60)
    # ... and that server is gone with it.
    api_base = re.search(r"Model server ready at (\S+)", log_path.read_text()).group(1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(api_base.removesuffix("/v1") + "/health", timeout=5)
