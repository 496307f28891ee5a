"""Fixtures for the server tests.

- `tiny_tokenizer`: the tiny model's real tokenizer (fast tests).
- `server`: ONE real `thinkcap serve` subprocess on the tiny model for the whole session (vLLM CPU
  engine), killed at the end. It is mounted at `--root-path /llm` (as behind a proxy), so every
  route answers both at `/v1/...` and at `/llm/v1/...`. Tests using it are marked `engine`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluation.servers import ServerProcess, free_port
from tests.serving.parity_probes import EFFORT_TABLE


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    api_key: str | None
    media_dir: Path
    model_dir: Path
    log_path: Path
    model: str = ""  # the served model id


EFFORTS = ",".join(f"{k}={v}" for k, v in EFFORT_TABLE.items() if k != "none")
# Flags both servers get, so the side-by-side matrix compares like with like.
SHARED_FLAGS = ["--max-model-len", "1024", "--seed", "0", "--enable-auto-tool-choice", "--tool-call-parser", "glm45"]


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    media_dir = tmp_path_factory.mktemp("media")
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    port, key = free_port(), "test-key"
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(tiny_model_dir), "--port", str(port),
           "--api-key", key, "--allowed-local-media-path", str(media_dir), "--served-model-name", "tiny",
           "--answer-reserve", "4", "--reasoning-effort-budgets", EFFORTS, "--root-path", "/llm", *SHARED_FLAGS]
    proc = ServerProcess("thinkcap serve", cmd, {**os.environ, "OMP_NUM_THREADS": "1"}, log_path, port)
    proc.start()
    try:
        yield Server(proc.base_url, key, media_dir, tiny_model_dir, log_path, "tiny")
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """vLLM's own OpenAI server on the same model and flags (the CPU wheel's `vllm` console script
    does not start, the module does). Same CPU environment as `thinkcap serve` sets for itself."""
    from vllm_adapter.engine_env import CPU_ENV_DEFAULTS

    log_path = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    port = free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
           "--port", str(port), "--served-model-name", "tiny", "--enforce-eager", *SHARED_FLAGS]
    env = {**os.environ, **CPU_ENV_DEFAULTS, "VLLM_USE_V2_MODEL_RUNNER": "0"}
    env.pop("VLLM_PLUGINS", None)
    proc = ServerProcess("vLLM's", cmd, env, log_path, port)
    proc.start()
    try:
        yield Server(proc.base_url, None, log_path.parent, tiny_model_dir, log_path, "tiny")
    finally:
        proc.stop()
