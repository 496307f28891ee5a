"""`thinkcap train` killed with SIGKILL and started again ends exactly where an uninterrupted run
ends: the same final weights, bit for bit, and the same metrics history (held-out evaluation
included). The kill comes as soon as the step-2 checkpoint exists (the filesystem is polled; no
wall-clock guess), so it lands in the pruning of old checkpoints or early in step 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def heldout_file(train_jsonl: Path, n: int = 6) -> Path:
    """The first `n` records as a held-out set, beside the training file (media paths stay valid)."""
    path = train_jsonl.with_name("heldout.jsonl")
    path.write_text("".join(train_jsonl.read_text().splitlines(keepends=True)[:n]))
    return path


def write_config(tmp_path: Path, model: Path, data: Path, out: str) -> Path:
    cfg = {"model": str(model), "train_data": str(data), "output_dir": out, "rollout_engine": "hf",
           "steps": 4, "prompts_per_step": 4, "group_size": 4, "num_minibatches": 2, "max_new_tokens": 48,
           "rollout_think_budget": 16, "answer_reserve": 8, "lr": 1e-3, "save_every": 1, "keep_checkpoints": 2,
           # malformed -1 vs well-formed ~0: rewards vary within groups, so every step updates the weights
           "min_reward": -1.0,
           "eval_data": str(heldout_file(data)), "eval_every": 2, "eval_think_budgets": [0, 16]}
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def command(cfg: Path) -> list[str]:
    cli = Path(sys.executable).with_name("thinkcap")  # the console script `pip install -e .` made
    return [str(cli), "train", str(cfg)] if cli.exists() else [sys.executable, "-m", "thinkcap", "train", str(cfg)]


def run_to_end(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def kill_when(cmd: list[str], cwd: Path, marker: Path, timeout_s: float = 600) -> int:
    """Start `cmd`, SIGKILL it as soon as `marker` exists; its return code."""
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s  # only a hang guard: the kill waits for the file
    try:
        while not marker.exists():
            assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {marker} appeared"
            assert time.monotonic() < deadline, f"{marker} never appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def timeless(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


@pytest.mark.slow
def test_sigkill_and_rerun_equals_uninterrupted(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    from safetensors.torch import load_file

    from training.checkpoint import list_checkpoints

    whole = run_to_end(command(write_config(tmp_path, warm_model_dir, synthetic_data, "whole")), tmp_path)
    killed_cmd = command(write_config(tmp_path, warm_model_dir, synthetic_data, "killed"))
    rc = kill_when(killed_cmd, tmp_path, tmp_path / "killed" / "checkpoints" / "step-000002" / "trainer_state.pt")
    assert rc == -signal.SIGKILL
    left = list_checkpoints(tmp_path / "killed")
    assert left and left[-1].name in ("step-000002", "step-000003")  # what the rerun resumes from
    run_to_end(killed_cmd, tmp_path)

    final = "checkpoints/step-000004/policy/model.safetensors"
    a, b = load_file(tmp_path / "whole" / final), load_file(tmp_path / "killed" / final)
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)
    history = timeless(tmp_path / "whole" / "metrics.jsonl")
    assert history == timeless(tmp_path / "killed" / "metrics.jsonl")
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    initial = load_file(next(warm_model_dir.glob("*.safetensors")))
    assert any(not torch_equal(a[k], initial[k].to(a[k].dtype)) for k in a)  # the run did train

    # Held-out evaluation: logged at steps 2 and 4 (the last), overall and per domain at each budget.
    for h in history:
        assert ("eval/accuracy@16" in h) == (h["step"] in (2, 4))
    last = history[-1]
    domains = {json.loads(line)["domain"] for line in heldout_file(synthetic_data).read_text().splitlines()}
    for budget in (0, 16):
        assert 0 <= last[f"eval/accuracy@{budget}"] <= 1
        assert {f"eval/{d}/accuracy@{budget}" for d in domains} <= set(last)
    assert last["eval/think_len@0"] == 0 < last["eval/think_len@16"] <= 16  # the budget was forced
    assert "eval@0 " in whole.stderr and "eval@16 " in whole.stderr  # the progress line
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(tmp_path / "whole" / "tb")).Reload().Tags()["scalars"]
    assert {"eval/accuracy@0", "eval/accuracy@16", *(f"eval/{d}/accuracy@16" for d in domains)} <= set(tags)


def torch_equal(x, y) -> bool:
    import torch

    return torch.equal(x, y)
