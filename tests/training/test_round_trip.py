"""Train, serve and demo are one loop: a checkpoint from `thinkcap train` is served by `thinkcap serve`
as it is, and the demo's own client and page work against it."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ui.client import ChatClient, Settings
from ui.server_proc import LocalServer, free_port, wait_ready
from ui.stream import Turn

BUDGET = 4


def train_two_steps(model: Path, data: Path, out: Path) -> Path:
    """Run `thinkcap train` as a user would (CLI, YAML, overrides) and return the newest policy folder."""
    cfg = out / "cfg.yaml"
    cfg.write_text(f"model: {model}\ntrain_data: {data}\noutput_dir: {out / 'run'}\nsteps: 2\n"
                   "prompts_per_step: 2\ngroup_size: 2\nmax_new_tokens: 32\nrollout_think_budget: 8\n"
                   "answer_reserve: 4\nsave_every: 2\nprogress_bar: false\n")
    done = subprocess.run([sys.executable, "-m", "thinkcap", "train", str(cfg), "--lr", "1e-3"],
                          timeout=900, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    (checkpoint,) = sorted((out / "run" / "checkpoints").glob("step-*"))[-1:]
    return checkpoint / "policy"


@pytest.mark.slow
@pytest.mark.engine
def test_trained_checkpoint_serves_with_budget_and_demo_talks_to_it(
    warm_model_dir: Path, synthetic_data: Path, tmp_path: Path
):
    policy = train_two_steps(warm_model_dir, synthetic_data, tmp_path)
    image = next((synthetic_data.parent / "images").glob("*.png"))
    url = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                             {"type": "text", "text": "How many shapes are in the image?"}]}]

    with LocalServer([str(policy), "--max-model-len", "1024", "--answer-reserve", "4"]) as server:
        # The demo's client: it streams, reads the extension fields and the usage chunk.
        client = ChatClient(server.api_base)
        assert client.model == str(policy)
        turn = Turn()
        for chunk in client.stream(messages, Settings(think_budget=BUDGET, max_tokens=48, temperature=0.0)):
            turn.feed(chunk)
        assert turn.finished and turn.effective_think_budget == BUDGET
        assert turn.num_thinking_tokens is not None and turn.num_thinking_tokens <= BUDGET
        # The warmed-up policy writes long thoughts, so a 4-token budget must force the answer.
        assert turn.answer_forced and turn.num_thinking_tokens == BUDGET

        # And the page itself comes up against that server.
        port = free_port()
        demo = subprocess.Popen([sys.executable, "-m", "thinkcap", "demo", "--api-base", server.api_base,
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{port}/", timeout=120, alive=lambda: demo.poll() is None)
            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
            assert page.status_code == 200 and "thinkcap" in page.text
        finally:
            demo.terminate()
            demo.wait(timeout=30)
