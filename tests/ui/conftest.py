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
def media(tmp_path_factory: pytest.TempPathFactory) -> ExampleMedia:
    return ensure_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"  # an image by name only: the demo must look at the bytes
    path.write_text("not an image at all\n")
    return path
