"""Eval fixtures: a small synthetic set, the demo's fake OpenAI-compatible server (pure parts), and
ONE real `thinkcap serve` on the tiny model for the whole session (tests using it: `engine`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ui.ui_fake_server import FakeServer

START_TIMEOUT_S = 600  # engine start is ~10 s alone, much more when other engines share the CPU


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def synthetic_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.synthetic import make_dataset

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
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"thinkcap serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"thinkcap serve not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
