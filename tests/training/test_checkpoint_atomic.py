"""A checkpoint exists whole or not at all: a kill while it is written (a real SIGKILL of a process
inside `save_checkpoint`) or while an old one is deleted never leaves a folder that resume picks up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import checkpoint
from training.checkpoint import list_checkpoints, load_trainer_state, save_checkpoint


@pytest.fixture
def fake_policy_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory protocol is under test, not HF's save_pretrained: write a small stand-in."""
    monkeypatch.setattr(checkpoint, "save_policy", lambda model, out, src, state=None: (
        Path(out).mkdir(parents=True), Path(out, "model.safetensors").write_bytes(b"weights")))


def save(out: Path, step: int, keep: int = 2) -> Path:
    return save_checkpoint(out, step, torch.nn.Linear(1, 1), out, {"history": [step]}, keep=keep)


def test_failure_mid_write_leaves_only_complete_checkpoints(tmp_path: Path, fake_policy_save, monkeypatch):
    save(tmp_path, 1)
    real_save = torch.save

    def dies_on_trainer_state(obj, path, *a, **kw):
        if Path(path).name == "trainer_state.pt":
            raise KeyboardInterrupt("killed")  # the process dies here: nothing after runs
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(torch, "save", dies_on_trainer_state)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, 2)
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "checkpoints" / "step-000002.tmp" / "policy").is_dir()  # half written...
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000001"]  # ...and never offered
    assert load_trainer_state(list_checkpoints(tmp_path)[-1])[0]["history"] == [1]
    save(tmp_path, 2)  # the resumed run saves the same step again: the leftover goes
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


def test_failure_mid_delete_never_leaves_a_half_deleted_step(tmp_path: Path, fake_policy_save, monkeypatch):
    save(tmp_path, 1)
    save(tmp_path, 2)
    real_rmtree = checkpoint.shutil.rmtree

    def dies_deleting(path, *a, **kw):
        if Path(path).name.endswith(".deleting") and Path(path).exists():
            (Path(path) / "trainer_state.pt").unlink()  # partly deleted...
            raise KeyboardInterrupt("killed")  # ...when the process dies
        return real_rmtree(path, *a, **kw)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", dies_deleting)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, 3)  # pruning step 1 dies right after the rename, inside the delete
    monkeypatch.setattr(checkpoint.shutil, "rmtree", real_rmtree)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000002", "step-000003"]
    assert (tmp_path / "checkpoints" / "step-000001.deleting").is_dir()
    save(tmp_path, 4)  # the next save clears what the killed delete left
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000003", "step-000004"]
    # A step-N folder without its trainer state (e.g. from an older, non-atomic writer) is no checkpoint.
    (tmp_path / "checkpoints" / "step-000009" / "policy").mkdir(parents=True)
    assert list_checkpoints(tmp_path)[-1].name == "step-000004"


KILLED_WRITER = """
import sys, time
from pathlib import Path
import torch
from training import checkpoint

def quick_policy(model, out, src, state=None):
    Path(out).mkdir(parents=True)
    Path(out, "model.safetensors").write_bytes(b"whole")

def slow_policy(model, out, src, state=None):
    Path(out).mkdir(parents=True)
    Path(out, "model.safetensors").write_bytes(b"half")
    Path(sys.argv[2]).touch()  # tell the parent: writing has started
    time.sleep(600)

out = Path(sys.argv[1])
checkpoint.save_policy = quick_policy
checkpoint.save_checkpoint(out, 1, torch.nn.Linear(1, 1), out, {"history": [1]})
checkpoint.save_policy = slow_policy
checkpoint.save_checkpoint(out, 2, torch.nn.Linear(1, 1), out, {"history": [2]})
"""


def test_sigkill_while_writing_a_checkpoint(tmp_path: Path):
    marker = tmp_path / "writing"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path), str(marker)], env=env)
    try:
        while not marker.exists():  # the filesystem says when: no wall-clock guess
            assert proc.poll() is None, f"writer exited early (rc {proc.returncode})"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "checkpoints" / "step-000002.tmp" / "policy").is_dir()  # killed mid-write
    ckpts = list_checkpoints(tmp_path)
    assert [p.name for p in ckpts] == ["step-000001"]
    assert load_trainer_state(ckpts[-1])[0]["history"] == [1]


def test_a_checkpoints_policy_records_its_budget_hint(tmp_path: Path, fake_policy_save):
    """`thinkcap serve` reads the hint from the policy folder: on when trained with one, off otherwise
    (a policy started from a hinted SFT model but trained without a hint must not inherit it)."""
    from budget.hint import BudgetHint, read_policy_hint

    hint = BudgetHint("Think for at most {budget} tokens.")
    hinted = save_checkpoint(tmp_path / "a", 1, torch.nn.Linear(1, 1), tmp_path, {"history": []}, hint=hint)
    assert read_policy_hint(hinted / "policy") == (True, hint)
    plain = save_checkpoint(tmp_path / "b", 1, torch.nn.Linear(1, 1), tmp_path, {"history": []})
    assert read_policy_hint(plain / "policy") == (True, None)
