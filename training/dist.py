"""Data parallel plumbing over torch.distributed (torchrun): no-ops when run as one process."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def init() -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun: NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
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


def mean(values: dict[str, float], world: int, device: torch.device) -> dict[str, float]:
    """Average each value over ranks."""
    totals = all_sum(list(values.values()), world, device)
    return {k: v / world for k, v in zip(values, totals)}


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown() -> None:
    """Tear down the process group `init` made (torchrun warns when a run exits without this)."""
    if dist.is_initialized():
        dist.destroy_process_group()
