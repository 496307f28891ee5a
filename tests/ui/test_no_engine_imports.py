"""The demo is a pure HTTP client: it must run where neither vLLM nor torch is installed."""

from __future__ import annotations

import subprocess
import sys


def test_demo_imports_neither_vllm_nor_torch() -> None:
    code = ("import sys, ui.cli, ui.app; "
            "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
