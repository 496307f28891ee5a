"""Eval fixtures: a small synthetic set, the demo's fake OpenAI-compatible server (pure parts), and
ONE real `thinkcap serve` on the tiny model for the whole session (tests using it: `engine`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.servers import ServerProcess, free_port
from tests.ui.ui_fake_server import FakeServer


@pytest.fixture(scope="session")
def synthetic_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("eval-synthetic"), n=6, seed=7)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a `thinkcap serve` subprocess on the tiny model."""
    log_path = tmp_path_factory.mktemp("eval-serve-log") / "serve.log"
    port = free_port()
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(tiny_model_dir), "--port", str(port),
           "--max-model-len", "1024", "--seed", "0"]
    proc = ServerProcess("thinkcap serve", cmd, {**os.environ, "OMP_NUM_THREADS": "1"}, log_path, port)
    proc.start()
    try:
        yield f"{proc.base_url}/v1"
    finally:
        proc.stop()
