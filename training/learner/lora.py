"""Optional LoRA on the policy (`lora_rank > 0`, needs `pip install -e ".[lora]"`, i.e. peft).

The adapters are injected in place (peft's `inject_adapter_in_model`), so the policy stays the HF
model the rest of the trainer knows (`policy.model`, `lm_head`, `generate`); only the adapter
matrices A, B require grad, so the optimizer holds state for them alone. Everything that leaves the
trainer sees plain weights: the rollout engines get W + (alpha / r) B A under the base parameter
names (`merged_named_parameters`), `policy/` in a checkpoint is that merged model as a plain HF
folder, and the adapter itself is saved beside it in PEFT's format (`policy_adapter/`), which is
what a resume loads back on top of the unchanged base model.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from training.config import ConfigError, GRPOConfig

ADAPTER = "default"  # peft's adapter name; PEFT's files on disk carry no adapter name


def target_regex(cfg: GRPOConfig) -> str:
    """Linear layers of the language model whose names end with one of `lora_target_modules`; the
    vision tower, embeddings and lm_head stay frozen."""
    names = "|".join(re.escape(n) for n in cfg.lora_modules())
    return rf"model\.language_model\..*\.({names})"


def apply_lora(policy: nn.Module, cfg: GRPOConfig) -> nn.Module:
    """Inject LoRA adapters into `policy` in place; only their parameters require grad afterwards."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=target_regex(cfg))
    try:
        inject_adapter_in_model(config, policy, adapter_name=ADAPTER)
    except ValueError as err:  # peft: "Target modules ... not found in the base model"
        raise ConfigError(f"lora_target_modules={cfg.lora_target_modules!r}: {err}") from err
    policy.lora_config = config  # what `save_adapter` writes as adapter_config.json
    return policy


def lora_layers(policy: nn.Module) -> dict[str, nn.Module]:
    from peft.tuners.lora import LoraLayer

    return {name: m for name, m in policy.named_modules() if isinstance(m, LoraLayer)}


def is_lora(policy: nn.Module) -> bool:
    return bool(lora_layers(policy))


@torch.no_grad()
def merged_named_parameters(policy: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Base parameters under their base names (`...q_proj.weight`, not `...q_proj.base_layer.weight`)
    with each adapted weight replaced by W + scaling * B @ A; the adapter tensors themselves are left
    out. This is what the rollout engines and the HF export take."""
    layers = lora_layers(policy)
    out = []
    for name, param in policy.named_parameters():
        if ".lora_" in name:
            continue
        owner, sep, leaf = name.rpartition(".base_layer.")
        if not sep:
            out.append((name, param.detach()))
            continue
        tensor = param.detach()
        if leaf == "weight":
            delta = layers[owner].get_delta_weight(ADAPTER)  # [out, in]
            tensor = (tensor.float() + delta.float()).to(tensor.dtype)
        out.append((f"{owner}.{leaf}", tensor))
    return out


def adapter_state(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors under PEFT's on-disk names (`base_model.model.<module>.lora_A.weight`)."""
    return {"base_model.model." + name.replace(f".{ADAPTER}.", "."): p.detach().clone()
            for name, p in policy.named_parameters() if ".lora_" in name}


def save_adapter(policy: nn.Module, out_dir: str | Path, base_model: str) -> Path:
    """A PEFT adapter folder (adapter_model.safetensors + adapter_config.json): `PeftModel.from_pretrained`
    loads it onto the base model, and a resume loads it back with `load_adapter`."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in adapter_state(policy).items()}, out / "adapter_model.safetensors")
    policy.lora_config.base_model_name_or_path = base_model
    policy.lora_config.save_pretrained(out)  # adapter_config.json
    return out


@torch.no_grad()
def load_adapter(policy: nn.Module, adapter_dir: str | Path) -> None:
    """Copy a saved adapter into the injected one, refusing any missing or extra tensor."""
    from safetensors.torch import load_file

    saved = load_file(Path(adapter_dir) / "adapter_model.safetensors")
    own = adapter_state(policy)
    if set(saved) != set(own):
        raise ConfigError(f"{adapter_dir}: the adapter does not match lora_rank/lora_target_modules of this run "
                          f"({len(saved)} tensors saved, {len(own)} expected)")
    params = dict(policy.named_parameters())
    for key, value in saved.items():
        name = key.removeprefix("base_model.model.")
        stem, _, leaf = name.rpartition(".")
        params[f"{stem}.{ADAPTER}.{leaf}"].copy_(value)
