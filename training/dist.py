"""Data parallel plumbing over torch.distributed (torchrun): no-ops when run as one process."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import torch
import torch.distributed as dist


_OWNED = False  # did `init` create the default process group (and so `shutdown` may destroy it)?


def init() -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun: NCCL on GPUs, gloo on CPU."""
    global _OWNED
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        _OWNED = True
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def gather(obj: Any, world: int) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def all_sum(values: list[float], world: int, device: torch.device) -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_max(value: int, world: int, device: torch.device) -> int:
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def mean(values: dict[str, float], world: int, device: torch.device) -> dict[str, float]:
    """Average each value over ranks."""
    totals = all_sum(list(values.values()), world, device)
    return {k: v / world for k, v in zip(values, totals)}


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown() -> None:
    """Tear down the process group `init` made (torchrun warns when a run exits without this).

    Only ours: in a single process the vLLM engine creates its own (gloo, world 1) group and
    destroys it in its exit handler; destroying it first made every run end with vLLM's
    `ValueError: Invalid process group specified`."""
    global _OWNED
    vllm_state = sys.modules.get("vllm.distributed.parallel_state")
    if vllm_state is not None and vllm_state.model_parallel_is_initialized():
        # A vLLM engine (external launcher) built its groups on ours: let vLLM tear down its groups
        # and then the world group, so its own exit handler later finds nothing left to destroy.
        vllm_state.cleanup_dist_env_and_memory()
    if _OWNED and dist.is_initialized():
        # Why the barrier and the pause: gloo's worker threads free each finished collective's tensors
        # under the GIL, and the group's C++ destructor (run later, when DDP's reducer is freed) joins
        # those threads while holding the GIL. A worker still waiting to free the last collective's
        # tensors then deadlocks the exit (seen 1 run in 5 on 2 loaded cores). The barrier makes every
        # collective finish; sleeping hands the GIL to any worker still tidying up.
        dist.barrier()
        time.sleep(0.2)
        dist.destroy_process_group()
    _OWNED = False
