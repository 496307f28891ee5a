"""Checkpoints that resume exactly, with the policy in a folder `thinkcap serve` loads as it is.

    output_dir/checkpoints/step-000010/
        policy/             HF format: config, safetensors, tokenizer, processor, chat template
        trainer_state.pt    step, optimizer, curriculum + dynamic-sampling state, metrics history
        rng-rank0.pt        Python / NumPy / torch (and CUDA) RNG states, one file per rank
        dcp/                FSDP2 only: sharded model + optimizer state (torch.distributed.checkpoint;
                            each rank writes its own shard files, and a load reshards to any world
                            size); trainer_state.pt then holds no optimizer, policy/ is the gathered copy

A checkpoint is written into `step-N.tmp` and renamed when complete, so a run killed mid-save
leaves the previous checkpoint as the newest valid one; old ones are renamed `step-N.deleting`
before they are deleted, so a kill mid-delete never leaves a half-deleted `step-N` behind.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from budget.hint import BudgetHint, write_policy_hint

_STEP_DIR = re.compile(r"step-(\d+)")
# save_pretrained writes weights, config.json and generation_config.json; the tokenizer, processor
# configs and chat template come from the starting model.
_ASSETS = re.compile(r"tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\..*|merges\.txt|"
                     r"chat_template\.(jinja|json)|(video_)?preprocessor_config\.json|processor_config\.json")


def copy_model_assets(src: str | Path, dst: str | Path) -> None:
    """Copy tokenizer, processor and template files so `dst` is a complete, servable model folder."""
    for path in Path(src).iterdir():
        if path.is_file() and _ASSETS.fullmatch(path.name) and not (Path(dst) / path.name).exists():
            shutil.copy2(path, Path(dst) / path.name)


def save_policy(model: torch.nn.Module, out_dir: str | Path, source_model_dir: str | Path,
                state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """`state_dict`: full tensors gathered from a sharded model (else the model's own)."""
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True, state_dict=state_dict)
    copy_model_assets(source_model_dir, out)
    return out


def save_sharded(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every rank writes its shards of model + optimizer state (FSDP2) with DCP."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))


def load_sharded(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def save_checkpoint(output_dir: str | Path, step: int, policy: torch.nn.Module, source_model_dir: str | Path,
                    trainer_state: dict[str, Any], rank: int = 0, world_size: int = 1, keep: int = 2, *,
                    sharded: tuple[torch.nn.Module, torch.optim.Optimizer] | None = None,
                    full_state: dict[str, torch.Tensor] | None = None,
                    adapter: Callable[[Path], Any] | None = None, hint: BudgetHint | None = None) -> Path:
    """Rank 0 writes policy + trainer state (the policy folder records its budget `hint`, also when
    off, so `thinkcap serve` never applies a hint the policy was not trained with); every rank writes its RNG state (and its DCP shards
    when `sharded` = (FSDP2 model, optimizer); `full_state` is then the gathered HF-named weights;
    under LoRA the merged ones, and `adapter(dir)` writes the adapter folder).
    Call on all ranks (the caller puts a barrier after it)."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_policy(policy, tmp / "policy", source_model_dir, full_state)
        write_policy_hint(tmp / "policy", hint)
        if adapter is not None:  # LoRA: policy/ is the merged model, the adapter goes beside it
            adapter(tmp / "policy_adapter")
        torch.save({"step": step, **trainer_state}, tmp / "trainer_state.pt")
    if world_size > 1:
        torch.distributed.barrier()
    if sharded is not None:
        save_sharded(tmp / "dcp", *sharded)
    torch.save(rng_state(), tmp / f"rng-rank{rank}.pt")
    if world_size > 1:
        torch.distributed.barrier()
    if rank == 0:
        if final.exists():  # the same step saved again (a resumed run re-reaching it)
            remove_checkpoint(final)
        tmp.rename(final)  # the one atomic step: before it the checkpoint does not exist, after it is whole
        for old in list_checkpoints(output_dir)[:-keep]:
            remove_checkpoint(old)
        for stale in final.parent.glob("step-*.deleting"):  # left by a run killed while deleting
            shutil.rmtree(stale, ignore_errors=True)
    return final


def remove_checkpoint(path: Path) -> None:
    """Rename out of the `step-N` namespace first, then delete: a kill during the (slow, non-atomic)
    delete leaves a `step-N.deleting` folder that `list_checkpoints` never offers to a resume."""
    trash = path.with_name(path.name + ".deleting")
    shutil.rmtree(trash, ignore_errors=True)
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first: `step-N` folders only (a `step-N.tmp` being written or a
    `step-N.deleting` being removed never counts), and only with their trainer state in them."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.fullmatch(p.name) and (p / "trainer_state.pt").is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.fullmatch(p.name).group(1)))


def load_trainer_state(ckpt: Path, rank: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer state, this rank's RNG state). Our own files: full unpickling is safe here."""
    state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    rng = torch.load(ckpt / f"rng-rank{rank}.pt", weights_only=False)
    return state, rng
