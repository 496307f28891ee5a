"""The one config of `thinkcap train`: a dataclass like TRL's GRPOConfig, filled from YAML + flags.

Defaults follow the GLM-4.1V-Thinking report's RL recipe (GRPO, clip-higher 0.2/0.28, no KL, no
entropy loss, top_p=1, per-sample loss, curriculum sampling, dynamic sampling, forced answering).
Every field can be overridden on the command line: `thinkcap train cfg.yaml --lr 1e-5`.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class GRPOConfig:
    # ---- model and data ------------------------------------------------------------------------
    model: str = _f("tiny", "HF model folder to start from; 'tiny' builds/uses the tiny random GLM-4.1V")
    train_data: str = _f("", "JSONL of training records (see docs/training.md); required")
    output_dir: str = _f("runs/grpo", "where checkpoints, TensorBoard events, metrics.jsonl and the plot go")
    system_prompt: str = _f("", "system message prepended to every prompt; empty for none")
    seed: int = _f(0, "seeds sampling of prompts, rollouts and weight init of anything random")
    dtype: str = _f("float32", "training dtype of the policy: float32 or bfloat16")

    # ---- schedule ------------------------------------------------------------------------------
    steps: int = _f(20, "RL iterations (one rollout batch + its updates each)")
    prompts_per_step: int = _f(8, "prompts per iteration over all ranks (each gives group_size samples)")
    group_size: int = _f(8, "samples per prompt (G in GRPO)")
    num_minibatches: int = _f(1, "optimizer steps per rollout batch; >1 makes the update off-policy, so clipping acts")
    ppo_epochs: int = _f(1, "passes over each rollout batch")
    lr: float = _f(1e-6, "AdamW learning rate (constant after warm-up)")
    lr_warmup_steps: int = _f(0, "optimizer steps of linear LR warm-up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm; <= 0 disables")

    # ---- rollouts ------------------------------------------------------------------------------
    rollout_engine: str = _f("auto", "vllm, hf or auto (vllm when importable and single-process, else hf)")
    temperature: float = _f(1.0, "sampling temperature of rollouts")
    top_p: float = _f(1.0, "nucleus sampling of rollouts; the report keeps 1.0 so every token can be explored")
    max_new_tokens: int = _f(256, "most response tokens per sample (thinking + closing + answer)")
    rollout_think_budget: int | None = _f(128, "most thinking tokens per sample; null for no budget")
    answer_reserve: int = _f(16, "response tokens kept free for the answer after a forced close")
    forced_answering: bool = _f(True, "at the budget force </think><answer> and let the sample answer; "
                                      "false: cut the sample there and give it min_reward")
    vllm_max_model_len: int = _f(2048, "vLLM context length (prompt + response)")
    vllm_gpu_memory_utilization: float = _f(0.3, "GPU memory share of the colocated vLLM engine (ignored on CPU)")

    # ---- rewards -------------------------------------------------------------------------------
    min_reward: float = _f(0.0, "reward of a malformed or truncated response (the minimum reward)")
    repetition_penalty: float = _f(0.5, "weight of the repetition penalty (share of repeated 4-grams)")
    language_mix_penalty: float = _f(0.5, "weight of the mixed-language penalty (share of minority-script words)")
    pass_threshold: float = _f(0.5, "a sample 'passes' (for pass@k, pass rate, curriculum) when its accuracy >= this")

    # ---- algorithm -----------------------------------------------------------------------------
    scale_advantages: bool = _f(True, "divide group-centred rewards by the group std (GRPO); false: centre only")
    clip_low: float = _f(0.2, "PPO ratio clip below 1 - clip_low")
    clip_high: float = _f(0.28, "PPO ratio clip above 1 + clip_high (clip-higher > clip_low keeps exploration)")
    loss_aggregation: str = _f("sample", "sample: token mean within a sample, then mean over samples; token: mean over all tokens")
    kl_coef: float = _f(0.0, "weight of the k3 KL to the initial policy (needs a frozen reference copy); 0 = none")

    # ---- curriculum and dynamic sampling -------------------------------------------------------
    curriculum: bool = _f(True, "RLCS: sample prompts by difficulty tier, re-weighted each iteration")
    num_tiers: int = _f(3, "difficulty tiers (0 = easiest); records carry `difficulty` from `--label-difficulty`")
    tier_ema: float = _f(0.7, "EMA factor of each tier's share of informative groups (0 < x < 1)")
    tier_min_weight: float = _f(0.05, "floor of a tier's sampling weight so no tier starves")
    online_window: int = _f(4, "rollouts per prompt remembered for its online pass rate / tier")
    dynamic_sampling: bool = _f(True, "drop groups whose rewards all equal (no signal) and oversample to refill")
    oversample_ema: float = _f(0.9, "EMA factor of the expansion ratio 1/(1 - invalid_rate)")
    max_oversample: float = _f(3.0, "cap on the oversampling factor")

    # ---- running it ----------------------------------------------------------------------------
    save_every: int = _f(10, "save a checkpoint every N steps (and at the end); 0 = only at the end")
    keep_checkpoints: int = _f(2, "newest checkpoints kept on disk")
    resume: bool = _f(True, "continue from the newest checkpoint in output_dir when there is one")
    tensorboard: bool = _f(True, "write TensorBoard scalars under output_dir/tb")
    progress_bar: bool = _f(True, "show a tqdm progress bar")

    def __post_init__(self) -> None:
        choices = {"rollout_engine": ("auto", "vllm", "hf"), "loss_aggregation": ("sample", "token"),
                   "dtype": ("float32", "bfloat16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("steps", "prompts_per_step", "group_size", "num_minibatches", "ppo_epochs", "max_new_tokens",
                     "num_tiers", "online_window", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("answer_reserve", "save_every", "lr_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: GRPO's advantage compares samples of one prompt")
        if self.num_minibatches > self.group_size:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must be <= group_size ({self.group_size}) "
                             "so every minibatch holds samples even when one group is left after dynamic sampling")
        if not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0; got {self.clip_low}, {self.clip_high}")
        if not 0 < self.top_p <= 1 or self.temperature <= 0:
            raise ValueError(f"need 0 < top_p <= 1 and temperature > 0; got {self.top_p}, {self.temperature}")
        budget = self.rollout_think_budget
        if budget is not None and budget < 0:
            raise ValueError(f"rollout_think_budget must be >= 0 or null; got {budget}")
        # The model writes `<think>` itself (1 token) and GLM-4.1V's forced closing is 2 tokens.
        if budget is not None and budget + self.answer_reserve + 3 > self.max_new_tokens:
            raise ValueError(
                f"rollout_think_budget ({budget}) + answer_reserve ({self.answer_reserve}) + <think> and 2 "
                f"closing tokens exceeds max_new_tokens ({self.max_new_tokens}): raise max_new_tokens to at "
                f"least {budget + self.answer_reserve + 3} or lower the budget")
        if not self.forced_answering and budget is None:
            raise ValueError("forced_answering=false cuts samples at rollout_think_budget; set a budget")
        for name in ("tier_ema", "oversample_ema"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1); got {getattr(self, name)}")
        if self.max_oversample < 1:
            raise ValueError(f"max_oversample must be >= 1; got {self.max_oversample}")
        if not 0 <= self.tier_min_weight < 1 / self.num_tiers:
            raise ValueError(f"tier_min_weight must be in [0, 1/num_tiers) = [0, {1 / self.num_tiers:.3f})")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0; got {self.kl_coef}")

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> GRPOConfig:
        """Read a YAML mapping, then apply `--field value` overrides. Relative data/output paths in
        the YAML are taken relative to the YAML's folder, so example configs run from anywhere."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of config fields, got {type(raw).__name__}")
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{path}: unknown config fields {unknown}; see `thinkcap train --help`")
        base = Path(path).resolve().parent
        for key in ("train_data", "output_dir"):
            if raw.get(key) and not Path(raw[key]).is_absolute():
                raw[key] = str((base / raw[key]).resolve())
        raw.update(vars(build_parser(cls).parse_args(overrides or [], namespace=_Overrides())))
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Overrides(argparse.Namespace):
    """Namespace that only holds what was actually passed on the command line."""


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parser_type(tp: Any) -> Any:
    """int | None → an int parser that also takes 'null'/'none'."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        inner = _parser_type(next(a for a in args if a is not type(None)))
        return lambda s: None if s.lower() in ("none", "null") else inner(s)
    return _parse_bool if tp is bool else tp


def build_parser(cls: type = GRPOConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        parser.add_argument(f"--{f.name}", type=_parser_type(hints[f.name]), metavar=f.name.upper(),
                            help=f"{f.metadata['help']} (default: {f.default!r})")
    return parser
