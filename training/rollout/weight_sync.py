"""How new policy weights reach the colocated vLLM engine: in buckets, around vLLM's sleep mode.

Buckets: the policy's HF-named parameters are walked in order and handed over `max_bytes` at a
time. Under FSDP2 a parameter is a shard (DTensor) and its full tensor is only gathered when its
bucket is built, so the trainer never holds more than one bucket of gathered weights (instead of
the whole model on every rank). All buckets go through one lazy iterator into a single vLLM
`reload_weights` call: vLLM's in-place reload re-processes a layer once all of its weights have
arrived and puts the old kernel tensors back into any layer that got none, so pushing the buckets
as separate reload calls would need bucket borders that never split a fused layer (q/k/v, gate/up).
Parameters come in module order, so vLLM buffers at most about one layer's tensors at a time.

Sleep mode (GPU only): after the rollouts the engine sleeps (level 1: weights offloaded to host
memory, KV cache dropped) so training gets the memory back; the push wakes the weights first,
loads the new ones, then wakes the KV cache, as TRL's and verl's colocated engines do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training.config import ConfigError

MB = 1 << 20


@dataclass
class BucketStats:
    """What the last push cost: the trainer-side peak is one bucket of gathered tensors."""

    buckets: int = 0
    peak_bytes: int = 0
    total_bytes: int = 0


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()  # a DTensor reports its full (global) shape


def _full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor: gathered over ranks for an FSDP2 shard (a collective: every rank must call
    it in the same order, which walking the same parameter list guarantees), else itself."""
    t = t.detach()
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def policy_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """HF-named parameters of the policy inside the (DDP / FSDP2-wrapped) SequenceLogprobs, or of
    a bare HF model; FSDP2 shards stay shards."""
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    policy = getattr(inner, "model", inner)
    return list(policy.named_parameters())


def weight_buckets(named: Iterable[tuple[str, torch.Tensor]], max_bytes: int,
                   stats: BucketStats | None = None) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Consecutive buckets of full tensors, each at most `max_bytes` (a tensor larger than that
    gets a bucket of its own). A bucket is gathered only when the consumer asks for it."""
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be > 0; got {max_bytes}")
    stats = stats if stats is not None else BucketStats()
    stats.buckets = stats.peak_bytes = stats.total_bytes = 0
    pending: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, t in named:
        if pending and size + _nbytes(t) > max_bytes:
            yield _gather(pending, size, stats)
            pending, size = [], 0
        pending.append((name, t))
        size += _nbytes(t)
    if pending:
        yield _gather(pending, size, stats)


def _gather(pending: list[tuple[str, torch.Tensor]], size: int, stats: BucketStats) -> list[tuple[str, torch.Tensor]]:
    stats.buckets += 1
    stats.peak_bytes = max(stats.peak_bytes, size)
    stats.total_bytes += size
    return [(name, _full(t)) for name, t in pending]


def flatten(buckets: Iterable[list[tuple[str, torch.Tensor]]]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs bucket by bucket. Popping drops this generator's reference as each
    tensor is handed over, so a finished bucket is freed before the next one is gathered."""
    for bucket in buckets:
        bucket.reverse()
        while bucket:
            yield bucket.pop()


def bucketed_weights(model: nn.Module, bucket_mb: float, stats: BucketStats | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's full HF-named weights as a lazy stream, gathered `bucket_mb` at a time. Only
    FSDP2 shards need gathering; otherwise the tensors are the policy's own (LoRA: merged), as
    `sharding.full_named_parameters` gives them, and a bucket costs no extra memory."""
    from training.learner import sharding

    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    named = policy_parameters(model) if sharding.is_fsdp(inner) else sharding.full_named_parameters(model)
    return flatten(weight_buckets(named, int(bucket_mb * MB), stats))


# ---- sleep mode --------------------------------------------------------------------------------

def check_sleep_mode() -> None:
    """Refuse vllm_sleep_mode where vLLM cannot free memory. vLLM 0.32's ModelConfig raises
    "Sleep mode is not supported on current platform." unless the platform says it can (CUDA, ROCm,
    XPU; `Platform.is_sleep_mode_available`), and the CPU worker's sleep/wake_up only log "sleep mode
    is not supported on CPU, ignore it.": on CPU the option would give nothing back."""
    from vllm.platforms import current_platform

    if not current_platform.is_sleep_mode_available():
        raise ConfigError(
            f"vllm_sleep_mode=true: vLLM says 'Sleep mode is not supported on current platform.' "
            f"(platform {type(current_platform).__name__}; vLLM's CPU worker ignores sleep/wake_up); "
            "set vllm_sleep_mode false here, it frees GPU memory only")


class EngineMemory:
    """Sleep/wake bookkeeping of one vLLM `LLM` and the weight push that must happen awake."""

    def __init__(self, llm: Any, sleep_mode: bool):
        self.llm = llm
        self.sleep_mode = sleep_mode
        self.asleep = False

    def sleep(self) -> None:
        """Give the engine's memory to training until the next push (level 1: weights to host
        memory, KV cache dropped; the weights are overwritten by the push anyway)."""
        if not self.sleep_mode:
            raise RuntimeError("sleep() on an engine built without vllm_sleep_mode")
        if not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def push(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        """Load HF-named weights (a lazy stream) with one `reload_weights` on every worker, waking
        the weights before and the KV cache after when asleep, then drop every cache of the old
        weights."""
        if self.asleep:
            self.llm.wake_up(tags=["weights"])  # reload writes into the weights' own storage
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        if self.asleep:
            if not self.llm.wake_up(tags=["kv_cache"]):
                raise RuntimeError("vLLM is not fully awake after waking weights and KV cache")
            self.asleep = False
        # Everything cached from the old weights must go: KV blocks of shared prompt prefixes and
        # vision-encoder outputs. The worker cleared its side of the encoder and multimodal caches;
        # clear the scheduler's and the front-end's too, or they would point at entries now gone.
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.llm.reset_mm_cache()
