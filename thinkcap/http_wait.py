"""Start-up plumbing shared by everything that runs a server as a child process (the demo's local
server, the eval/bench servers, the test fixtures): a free port, and waiting for `/health`."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

POLL_SECONDS = 0.5
PORTS_FROM = 20000  # free_port's lower bound: above the well-known service ports most machines run
_RNG = random.SystemRandom()


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out for `bind(0)` and outgoing connections (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now and stays out of the kernel's way until someone binds it.

    The port is chosen below the ephemeral range: between this call and the child's bind (the demo binds
    only after its model server is ready, minutes later) vLLM and every outgoing connection draw ports
    from the ephemeral range, and one of them took a `bind(0)` port in a CI run ("Cannot find empty
    port in range: 41957-41957")."""
    low, _ = ephemeral_range()
    # SystemRandom: a test that seeds `random` must not make two processes try the same ports in order.
    candidates = _RNG.sample(range(PORTS_FROM, low), k=min(200, low - PORTS_FROM)) if low > PORTS_FROM else []
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue  # taken
            return port
    with socket.socket() as s:  # a crowded or unusual machine: take what the kernel offers
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
