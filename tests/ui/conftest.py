"""Fixtures for the demo's tests: the fake OpenAI-compatible server and example media."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ui.examples import ExampleMedia, ensure_examples
from ui.server_proc import free_port
from tests.ui.ui_fake_server import FakeServer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the network is closed anyway


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_fake() -> Iterator[FakeServer]:
    """One fake server for all browser tests; `fake_server` is a fresh one per test."""
    server = FakeServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One headless Chromium for the whole session (starting one costs seconds)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    from tests.ui.browser_kit import launch_context
    with sync_api.sync_playwright() as playwright:
        context = launch_context(playwright, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture(scope="session")
def demo_url(shared_fake: FakeServer, media: ExampleMedia) -> str:
    """The page, served in-process against the shared fake server."""
    from tests.ui.browser_kit import serve_demo
    return serve_demo(shared_fake.api_base, media)


@pytest.fixture
def page(browser, demo_url: str) -> Iterator:
    """A fresh page (a fresh Gradio session) once the status line says the server answers."""
    page = browser.new_page()
    page.goto(demo_url)
    # A wait, not a speed check: on 2 busy cores (training runs beside the suite) the first status
    # poll has taken over playwright's default 30 s; give it room rather than fail the setup.
    page.get_by_text("Connected to").wait_for(timeout=120_000)
    yield page
    page.close()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> ExampleMedia:
    return ensure_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"  # an image by name only: the demo must look at the bytes
    path.write_text("not an image at all\n")
    return path
