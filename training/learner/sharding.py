"""How the policy is spread over ranks: as it is (1 process), DDP, or FSDP2 (`fully_shard`).

FSDP2 shards every transformer block (`_no_split_modules` of the HF model: decoder layers and
vision blocks) and the root (`SequenceLogprobs`: embeddings, lm_head, norms, the rest), so
parameters, gradients and AdamW state live 1/world on each rank. With compute_dtype=bfloat16 the
unsharded parameters are cast to bf16 for forward/backward (`MixedPrecisionPolicy`) while the
sharded fp32 parameters stay the master copy; gradients are reduced in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from training.config import ConfigError, GRPOConfig


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def wrap(scorer: nn.Module, cfg: GRPOConfig, world: int) -> nn.Module:
    """`scorer` (a SequenceLogprobs) ready for data-parallel training over `world` ranks."""
    if world == 1:
        if cfg.distributed == "fsdp":
            raise ConfigError("distributed=fsdp shards over torchrun ranks; run under torchrun, or use ddp")
        return scorer
    if cfg.distributed == "ddp":  # vision params sit idle on text-only batches, hence find_unused_parameters
        return nn.parallel.DistributedDataParallel(scorer, find_unused_parameters=True)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    bf16 = cfg.compute_dtype == "bfloat16"
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
    block_types = set(getattr(scorer.model, "_no_split_modules", None) or [])
    blocks = [m for m in scorer.modules() if type(m).__name__ in block_types]
    if not blocks:
        raise ConfigError(f"distributed=fsdp: no transformer blocks found in {type(scorer.model).__name__}")
    for block in blocks:
        fully_shard(block, mp_policy=mp)
    fully_shard(scorer, mp_policy=mp)
    scorer.always_run_vision = True  # every rank's vision units must join every collective
    return scorer


@contextlib.contextmanager
def grad_sync(model: nn.Module, sync: bool) -> Iterator[None]:
    """Accumulate gradients locally (sync=False) or reduce them over ranks (the last micro-batch)."""
    if isinstance(model, nn.parallel.DistributedDataParallel) and not sync:
        with model.no_sync():
            yield
        return
    if is_fsdp(model):
        model.set_requires_gradient_sync(sync)
    yield


def autocast(cfg: GRPOConfig, model: nn.Module, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 compute without FSDP: autocast (weights stay in `dtype`); FSDP2 casts by itself."""
    if cfg.compute_dtype != "bfloat16" or is_fsdp(model):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def clip_grad_norm(model: nn.Module, max_norm: float) -> float:
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm if max_norm > 0 else float("inf"))
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def full_named_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """HF-named full tensors on every rank (gathered from the shards under FSDP2, merged with the
    adapters under LoRA): what the rollout engine and the HF export need."""
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if not is_fsdp(inner):
        from training.learner.lora import is_lora, merged_named_parameters

        # LoRA: W + scaling * B @ A under the base names; the engines and the export know no adapters.
        return merged_named_parameters(inner.model) if is_lora(inner.model) else list(inner.model.named_parameters())
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(inner, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False))
    names = {n for n, _ in inner.model.named_parameters()}
    return [(k.removeprefix("model."), v) for k, v in state.items() if k.removeprefix("model.") in names]
