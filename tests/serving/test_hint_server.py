"""A trained policy folder is served with the hint it records (real `thinkcap serve`, its own
server: the shared one runs without a hint so the parity tests compare like with like)."""

from __future__ import annotations

import os
import shutil
import sys

import httpx
import pytest

from budget.hint import BudgetHint, write_policy_hint
from evaluation.servers import ServerProcess, free_port

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def policy_server(tiny_model_dir, tmp_path_factory):
    policy = tmp_path_factory.mktemp("policy") / "best-policy"
    shutil.copytree(tiny_model_dir, policy)
    write_policy_hint(policy, BudgetHint("Think for at most {budget} tokens."))
    port = free_port()
    log = tmp_path_factory.mktemp("hint-log") / "serve.log"
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(policy), "--port", str(port), "--max-model-len", "512",
           "--served-model-name", "policy", "--answer-reserve", "4"]
    proc = ServerProcess("thinkcap serve (policy)", cmd, {**os.environ, "OMP_NUM_THREADS": "1"}, log, port)
    proc.start()
    try:
        yield proc.base_url, log
    finally:
        proc.stop()


def _prompt_text(url: str, **body) -> tuple[str, dict]:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
        "model": "policy", "messages": [{"role": "user", "content": "Add up: a3 b5."}], "return_token_ids": True,
        "temperature": 0, **body})
    assert r.status_code == 200, r.text
    data = r.json()
    ids = data["prompt_token_ids"]
    text = httpx.post(f"{url}/detokenize", json={"model": "policy", "tokens": ids}, timeout=60).json()["prompt"]
    return text, data["choices"][0]["thinkcap"]


def test_the_policy_folders_hint_reaches_the_prompt(policy_server):
    url, log = policy_server
    assert "budget hint 'Think for at most {budget} tokens.'" in log.read_text()
    text, info = _prompt_text(url, think_budget=8, max_tokens=32)
    assert "Add up: a3 b5.\nThink for at most 8 tokens." in text and info["think_budget"] == 8
    assert info["budget_hint"] == "Think for at most 8 tokens."  # reported, so a client can continue under it
    text, info = _prompt_text(url, think_budget=40, max_tokens=30)  # 30 - 2 closing - 4 reserve
    assert "at most 24 tokens." in text and info["think_budget"] == 24
    text, info = _prompt_text(url, max_tokens=30)  # no budget: shown what max_tokens leaves for thinking
    assert "at most 24 tokens." in text and info["think_budget"] == 24


def test_a_continued_reply_keeps_the_prompt_its_client_sends(policy_server):
    """The demo's Compare and --ladder answer a cut thought with continue_final_message and re-send the
    thought's reported hint themselves: the server adds none, so the hint appears once, as sent."""
    url, _ = policy_server
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
        "model": "policy", "temperature": 0, "max_tokens": 16, "think_budget": 0, "return_token_ids": True,
        "continue_final_message": True, "add_generation_prompt": False,
        "messages": [{"role": "user", "content": "Add up: a3 b5.\nThink for at most 32 tokens."},
                     {"role": "assistant", "content": "<think>a3 b8"}]})
    assert r.status_code == 200, r.text
    ids = r.json()["prompt_token_ids"]
    text = httpx.post(f"{url}/detokenize", json={"model": "policy", "tokens": ids}, timeout=60).json()["prompt"]
    assert text.count("Think for at most") == 1 and "at most 32 tokens." in text
    assert r.json()["choices"][0]["thinkcap"]["budget_hint"] is None
