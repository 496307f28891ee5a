"""Starting and waiting for servers: the demo's local `thinkcap serve` and readiness polling."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

from ui.server_proc import LocalServer, free_port, wait_ready


def test_wait_ready_returns_once_the_server_answers(fake_server) -> None:
    wait_ready(fake_server.api_base.removesuffix("/v1") + "/health", timeout=30)


def test_wait_ready_gives_up_when_nothing_listens() -> None:
    with pytest.raises(TimeoutError, match="no answer from"):
        wait_ready(f"http://127.0.0.1:{free_port()}/health", timeout=1)


def test_wait_ready_stops_when_the_process_died() -> None:
    with pytest.raises(RuntimeError, match="exited during start-up"):
        wait_ready(f"http://127.0.0.1:{free_port()}/health", timeout=60, alive=lambda: False)


def test_a_server_that_cannot_start_is_reported_with_its_log() -> None:
    server = LocalServer(extra_args=["--no-such-option-for-thinkcap"], startup_timeout=300)
    with pytest.raises(RuntimeError, match="`thinkcap serve` did not start") as failure:
        server.start()
    assert str(server.log_path) in str(failure.value)
    assert server.log_tail() in str(failure.value)  # the reason is shown, not just "failed"


def test_demo_cli_serves_the_page_and_exits_cleanly_on_sigterm(fake_server) -> None:
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "thinkcap", "demo", "--api-base",
                             fake_server.api_base, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", timeout=300, alive=lambda: demo.poll() is None)
        config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).json()
        assert config["title"] == "thinkcap · think-budget demo"
    finally:
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(60)
    assert code == 0
