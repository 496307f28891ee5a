"""Memory settings change memory, not the update: micro-batches, gradient checkpointing and FSDP2
over 2 ranks give the loss, gradients and next parameters of one plain forward over the batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.update_run import run_update

SCRIPT = Path(__file__).with_name("update_run.py")


def assert_same_update(a: dict, b: dict, atol: float = 2e-6) -> None:
    for mode in ("sample", "token"):
        ra, rb = a[mode], b[mode]
        assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-6), mode
        assert ra["grads"].keys() == rb["grads"].keys() and len(ra["grads"]) > 50  # vision tower included
        for name in ra["grads"]:
            torch.testing.assert_close(ra["grads"][name], rb["grads"][name], atol=atol, rtol=1e-4, msg=name)
        for name in ra["params"]:
            torch.testing.assert_close(ra["params"][name], rb["params"][name], atol=atol, rtol=1e-5, msg=name)


@pytest.fixture(scope="module")
def plain(tiny_model_dir: Path, synthetic_data: Path) -> dict:
    return run_update(str(tiny_model_dir), str(synthetic_data), micro=0)


def test_micro_batches_and_checkpointing_give_the_same_update(plain, tiny_model_dir: Path, synthetic_data: Path):
    micro = run_update(str(tiny_model_dir), str(synthetic_data), micro=1)
    assert plain["sample"]["micro_batches"] == 1 and micro["sample"]["micro_batches"] == 6
    assert_same_update(plain, micro)
    assert_same_update(plain, run_update(str(tiny_model_dir), str(synthetic_data), micro=4, checkpointing=True))


@pytest.mark.slow
def test_fsdp2_two_ranks_with_micro_batches_equal_one_rank(plain, tiny_model_dir: Path, synthetic_data: Path,
                                                           tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(SCRIPT), str(tiny_model_dir), str(synthetic_data), str(tmp_path), "1", "--fsdp"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sharded = torch.load(tmp_path / "update-w2-m1-fsdp.pt")
    assert sharded["sample"]["micro_batches"] == 3  # 3 rows per rank, 1 per micro-batch
    assert_same_update(plain, sharded)


def test_bf16_compute_keeps_fp32_master_weights_and_tracks_fp32(plain, tiny_model_dir: Path, synthetic_data: Path):
    bf16 = run_update(str(tiny_model_dir), str(synthetic_data), micro=2, compute_dtype="bfloat16")
    for mode in ("sample", "token"):
        assert all(p.dtype == torch.float32 for p in bf16[mode]["params"].values())  # master copy stays fp32
        assert bf16[mode]["loss"] == pytest.approx(plain[mode]["loss"], abs=0.02)
        ga = torch.cat([g.flatten() for g in plain[mode]["grads"].values()])
        gb = torch.cat([bf16[mode]["grads"][k].flatten().float() for k in plain[mode]["grads"]])
        assert torch.nn.functional.cosine_similarity(ga, gb, dim=0) > 0.95  # same direction, bf16 noise
