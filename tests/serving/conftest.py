"""Fixtures for the server tests.

- `tiny_tokenizer`: the tiny model's real tokenizer (fast tests).
- `server`: ONE real `thinkcap serve` subprocess on the tiny model for the whole session (vLLM CPU
  engine), killed at the end. Tests using it are marked `engine`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 600  # engine start is ~10 s alone, much more when other engines share the CPU


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    api_key: str
    media_dir: Path
    model_dir: Path
    log_path: Path


def _wait_healthy(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"thinkcap serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"thinkcap serve not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    media_dir = tmp_path_factory.mktemp("media")
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    port, key = free_port(), "test-key"
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(tiny_model_dir), "--port", str(port),
           "--api-key", key, "--allowed-local-media-path", str(media_dir),
           "--max-model-len", "1024", "--answer-reserve", "4", "--seed", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log_path)
        yield Server(url, key, media_dir, tiny_model_dir, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
