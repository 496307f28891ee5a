"""Start-up plumbing shared by everything that runs a server as a child process (the demo's local
server, the eval/bench servers, the test fixtures): a free port, and waiting for `/health`."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

POLL_SECONDS = 0.5


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll `GET url` until it answers 200; RuntimeError as soon as `alive()` turns false (the
    process died: no point waiting out the timeout), TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"no answer from {url} after {timeout:.0f}s")
