"""Run a local `thinkcap serve` for the demo when no `--api-base` is given.

The server is a child process on a free port; the demo waits for its `/health` and stops it on
exit. Its output goes to a log file so the demo's console stays readable; the tail of that log
is raised with the error when start-up fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from thinkcap.http_wait import free_port, wait_ready

__all__ = ["LocalServer", "free_port", "wait_ready"]


class LocalServer:
    """`with LocalServer() as server:` gives `server.api_base` once the server is healthy."""

    def __init__(self, extra_args: list[str] | None = None, startup_timeout: float = 900.0):
        self.port = free_port()
        self.extra_args = extra_args or []
        self.startup_timeout = startup_timeout
        self.log_path = Path(tempfile.mkstemp(prefix="thinkcap-serve-", suffix=".log")[1])
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def start(self) -> None:
        command = [sys.executable, "-m", "thinkcap", "serve", "--port", str(self.port),
                   *self.extra_args]
        with self.log_path.open("wb") as log:
            # Own session: Ctrl-C in the demo's terminal reaches only the demo, which then stops
            # the server itself, and a kill can take the engine's worker processes along.
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_ready(f"{self.base_url}/health", self.startup_timeout, alive=self._running)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"`thinkcap serve` did not start: {exc}.\n"
                               f"Last lines of {self.log_path}:\n{self.log_tail()}") from None

    def _running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL to its process group if it has not exited after `grace` s."""
        if not self._running():
            return
        self._proc.terminate()
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
