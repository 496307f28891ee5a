"""The one config of `thinkcap train`: a dataclass like TRL's GRPOConfig, filled from YAML + flags.

Defaults follow the GLM-4.1V-Thinking report's RL recipe (GRPO, clip-higher 0.2/0.28, no KL, no
entropy loss, top_p=1, per-sample loss, curriculum sampling, dynamic sampling, forced answering).
Every field can be overridden on the command line: `thinkcap train cfg.yaml --lr 1e-5`. Flags are
the field names with hyphens (`--rollout-think-budget 64`); the underscore spelling of the YAML key
(`--rollout_think_budget`) is accepted too.

Paths (model, train_data, output_dir): a relative path written in the YAML is relative to the YAML
file's folder; a relative path given as a flag is relative to the current directory. Both are made
absolute when the config loads, so the run never depends on where it was started from. `model` is
only treated as a path when that file or folder exists (else it is a hub id, or `tiny`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A setting (or the data it names) is wrong; the CLI prints the message alone and exits 2."""


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
    dtype: str = _f("float32", "dtype of the policy's master weights and optimizer state: float32 or bfloat16")
    compute_dtype: str = _f("float32", "dtype of forward/backward: bfloat16 runs them in bf16 (autocast, or FSDP2's "
                                       "mixed precision) while weights and optimizer state stay in `dtype`")

    # ---- schedule ------------------------------------------------------------------------------
    steps: int = _f(20, "RL iterations (one rollout batch + its updates each)")
    prompts_per_step: int = _f(8, "prompts per iteration over all ranks (each gives group_size samples)")
    group_size: int = _f(8, "samples per prompt (G in GRPO)")
    num_minibatches: int = _f(1, "optimizer steps per rollout batch (and epoch); >1 makes the update off-policy, so "
                                 "clipping acts. Not a memory setting: see micro_batch_size")
    micro_batch_size: int = _f(0, "rows per forward/backward on each rank; a minibatch's micro-batches accumulate "
                                  "gradients into one optimizer step (same result, less memory); 0 = whole minibatch")
    gradient_checkpointing: bool = _f(False, "recompute each decoder layer's activations in backward (less memory, ~1/3 more compute)")
    logprob_chunk_size: int = _f(1024, "response tokens per chunk of lm_head + log-softmax: only response positions are "
                                       "scored, one [chunk, vocab] fp32 block at a time (never [batch, seq, vocab])")
    distributed: str = _f("ddp", "under torchrun: ddp (replicated policy) or fsdp (FSDP2 fully_shard: parameters, "
                                 "gradients and optimizer state sharded; checkpoints through torch.distributed.checkpoint)")
    ppo_epochs: int = _f(1, "passes over each rollout batch")
    lr: float = _f(1e-6, "AdamW learning rate (constant after warm-up)")
    lr_warmup_steps: int = _f(0, "optimizer steps of linear LR warm-up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm; <= 0 disables")

    # ---- rollouts ------------------------------------------------------------------------------
    rollout_engine: str = _f("auto", "vllm, hf or auto (vllm when importable, else hf); under torchrun every rank "
                                     "runs its own colocated vLLM engine (external launcher, data parallel)")
    temperature: float = _f(1.0, "sampling temperature of rollouts")
    top_p: float = _f(1.0, "nucleus sampling of rollouts; the report keeps 1.0 so every token can be explored")
    max_new_tokens: int = _f(256, "most response tokens per sample (thinking + closing + answer)")
    rollout_think_budget: int | None = _f(128, "most thinking tokens per sample; null for no budget")
    answer_reserve: int = _f(16, "response tokens kept free for the answer after a forced close")
    forced_answering: bool = _f(True, "at the budget force </think><answer> and let the sample answer; "
                                      "false: cut the sample there and give it min_reward")
    rollout_budget_choices: str = _f("", "draw each rollout's thinking budget instead of the fixed rollout_think_budget: "
                                         "'0,4,8,16,32' (uniform over the list) or 'loguniform:4-64'; the drawn "
                                         "budget is recorded per sample; empty = off")
    rollout_budget_per: str = _f("group", "with rollout_budget_choices: one budget per prompt group, or per sample "
                                          "(a group then holds each listed budget about equally often)")
    budget_aware_advantages: bool = _f(False, "normalise rewards within the samples of a group that share a budget, "
                                              "so short-budget samples are not judged against long ones")
    vllm_max_model_len: int = _f(2048, "vLLM context length (prompt + response)")
    vllm_gpu_memory_utilization: float = _f(0.3, "GPU memory share of the colocated vLLM engine (ignored on CPU)")
    vllm_max_images: int | None = _f(None, "vLLM's limit_mm_per_prompt for images; null: the most any training record has")
    vllm_max_videos: int | None = _f(None, "vLLM's limit_mm_per_prompt for videos; null: the most any training record has")
    vllm_log_level: str = _f("error", "vLLM's log level in training (its per-step load notices bury the progress "
                                      "line); the VLLM_LOGGING_LEVEL environment variable wins when set")
    rollout_tensor_parallel_size: int = _f(1, "under torchrun: ranks per vLLM engine (tensor parallel inside each group of "
                                              "consecutive ranks, data parallel over the groups); must divide the world size")
    weight_sync_bucket_mb: float = _f(512, "the weight push after each update gathers (FSDP2) and hands the policy's "
                                           "weights to vLLM this many MB at a time: the extra memory is one bucket")
    vllm_sleep_mode: bool = _f(False, "put vLLM to sleep after the rollouts (weights to host memory, KV cache freed) and "
                                      "wake it for the weight push; GPU only (vLLM has no sleep mode on CPU)")

    # ---- rewards -------------------------------------------------------------------------------
    min_reward: float = _f(0.0, "reward of a malformed or truncated response (the minimum reward)")
    repetition_penalty_weight: float = _f(0.5, "reward penalty weight for repeated text (x share of repeated 4-grams); "
                                                "not the sampling parameter repetition_penalty")
    language_mix_penalty_weight: float = _f(0.5, "reward penalty weight for mixed languages (x share of minority-script words)")
    judge_url: str = _f("", "OpenAI-compatible base URL of a judge model scoring answer fluency / instruction "
                            "compliance 0-10 (training/judge.py); empty = off")
    judge_model: str = _f("", "model name sent to the judge server")
    judge_weight: float = _f(0.2, "reward penalty weight of the judge: reward -= weight x (1 - score/10)")
    pass_threshold: float = _f(0.5, "a sample 'passes' (for pass@k, pass rate, curriculum) when its accuracy >= this")

    # ---- algorithm -----------------------------------------------------------------------------
    scale_advantages: bool = _f(True, "divide group-centred rewards by the group std (GRPO); false: centre only")
    clip_low: float = _f(0.2, "PPO ratio clip below 1 - clip_low")
    clip_high: float = _f(0.28, "PPO ratio clip above 1 + clip_high (clip-higher > clip_low keeps exploration)")
    loss_aggregation: str = _f("sample", "sample: token mean within a sample, then mean over samples; token: mean over all tokens")
    kl_coef: float = _f(0.0, "weight of the k3 KL to the initial policy (needs a frozen reference copy); 0 = none")

    # ---- curriculum and dynamic sampling -------------------------------------------------------
    domain_mix: str = _f("", "per-domain sampling weights, 'counting=2,exact=0.5' (unlisted domains weigh 1): "
                             "within a tier, records are drawn in proportion to their domain's weight; empty = uniform")
    curriculum: bool = _f(True, "RLCS: sample prompts by difficulty tier, re-weighted each iteration")
    num_tiers: int = _f(3, "difficulty tiers (0 = easiest); records carry `difficulty` from `--label-difficulty`")
    tier_ema: float = _f(0.7, "EMA factor of each tier's share of informative groups (0 < x < 1)")
    tier_min_weight: float = _f(0.05, "floor of a tier's sampling weight so no tier starves")
    online_window: int = _f(4, "rollouts per prompt remembered for its online pass rate / tier")
    dynamic_sampling: bool = _f(True, "drop groups whose rewards all equal (no signal) and oversample to refill")
    max_refill_rounds: int = _f(2, "extra rollout rounds per step while dynamic sampling left fewer than "
                                   "prompts_per_step informative groups (verl's filter_groups); 0 = train on what is left")
    oversample_ema: float = _f(0.9, "EMA factor of the expansion ratio 1/(1 - invalid_rate)")
    max_oversample: float = _f(3.0, "cap on the oversampling factor")

    # ---- LoRA (optional; needs peft: pip install -e ".[lora]") ---------------------------------
    lora_rank: int = _f(0, "rank of LoRA adapters on the language model's linear layers (training/lora.py): only the "
                           "adapters train; rollouts and policy/ get the merged weights; 0 = full fine-tuning")
    lora_alpha: float = _f(16.0, "LoRA scaling numerator: the update is (lora_alpha / lora_rank) * B @ A")
    lora_dropout: float = _f(0.0, "dropout on the LoRA branch's input in training forwards (0 <= x < 1)")
    lora_target_modules: str = _f("q_proj,k_proj,v_proj,o_proj,gate_up_proj,down_proj",
                                  "comma-separated names of the language model's linear layers that get adapters "
                                  "(the vision tower, embeddings and lm_head stay frozen)")

    # ---- held-out evaluation (training/heldout.py) ---------------------------------------------
    eval_data: str = _f("", "JSONL of held-out records (training format), scored like `thinkcap eval` every eval_every steps")
    eval_every: int = _f(0, "evaluate on eval_data every N steps and at the last step; 0 = off")
    eval_think_budgets: str = _f("32", "thinking budgets to evaluate at, comma-separated ('0,32,128'; a YAML list works "
                                       "too): at each the answer is forced as in rollouts")
    eval_samples: int = _f(1, "responses per eval record and budget (accuracy is their mean); > 1 needs eval_temperature > 0")
    eval_temperature: float = _f(0.0, "sampling temperature of eval responses; 0 = greedy")

    # ---- running it ----------------------------------------------------------------------------
    save_every: int = _f(10, "save a checkpoint every N steps (and at the end); 0 = only at the end")
    keep_checkpoints: int = _f(2, "newest checkpoints kept on disk")
    resume: bool = _f(True, "continue from the newest checkpoint in output_dir when there is one")
    tensorboard: bool = _f(True, "write TensorBoard scalars under output_dir/tb")
    wandb_project: str = _f("", "also log every scalar to Weights & Biases under this project (needs `pip install "
                                "wandb`); empty = off")
    progress_bar: bool = _f(True, "print one progress line per step (reward, accuracy, thinking tokens, forced rate, time)")

    def __post_init__(self) -> None:
        choices = {"rollout_engine": ("auto", "vllm", "hf"), "loss_aggregation": ("sample", "token"),
                   "dtype": ("float32", "bfloat16"), "compute_dtype": ("float32", "bfloat16"),
                   "distributed": ("ddp", "fsdp"), "vllm_log_level": ("debug", "info", "warning", "error")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("steps", "prompts_per_step", "group_size", "num_minibatches", "ppo_epochs", "max_new_tokens",
                     "num_tiers", "online_window", "keep_checkpoints", "logprob_chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("answer_reserve", "save_every", "lr_warmup_steps", "micro_batch_size", "max_refill_rounds"):
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
        fixed = not self.rollout_budget_choices.strip()  # drawn budgets are checked in _check_budget_choices
        if fixed and budget is not None and budget + self.answer_reserve + 3 > self.max_new_tokens:
            raise ValueError(
                f"rollout_think_budget ({budget}) + answer_reserve ({self.answer_reserve}) + <think> and 2 "
                f"closing tokens exceeds max_new_tokens ({self.max_new_tokens}): raise max_new_tokens to at "
                f"least {budget + self.answer_reserve + 3} or lower the budget")
        self._check_budget_choices()
        if not self.forced_answering and budget is None:
            raise ValueError("forced_answering=false cuts samples at rollout_think_budget; set a budget")
        for name in ("tier_ema", "oversample_ema"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1); got {getattr(self, name)}")
        if self.max_oversample < 1:
            raise ValueError(f"max_oversample must be >= 1; got {self.max_oversample}")
        if not 0 <= self.tier_min_weight < 1 / self.num_tiers:
            raise ValueError(f"tier_min_weight must be in [0, 1/num_tiers) = [0, {1 / self.num_tiers:.3f})")
        for name in ("vllm_max_images", "vllm_max_videos"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 or null; got {getattr(self, name)}")
        if self.wandb_project and importlib.util.find_spec("wandb") is None:
            raise ConfigError(f"wandb_project={self.wandb_project!r} needs wandb: pip install wandb (or leave it empty)")
        self.domain_weights()  # parses, or raises naming the bad part
        if self.judge_url and not self.judge_model:
            raise ConfigError("judge_url is set: also set judge_model (the name the judge server serves)")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0; got {self.kl_coef}")
        self._check_rollout_engine_layout()
        self._check_lora()
        self._check_eval()

    def _check_lora(self) -> None:
        from training.config_checks import check_lora

        check_lora(self)

    def lora_modules(self) -> list[str]:
        return [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]

    def _check_eval(self) -> None:
        from training.config_checks import check_eval

        check_eval(self)

    def eval_budgets(self) -> list[int]:
        from training.config_checks import parse_eval_budgets

        return parse_eval_budgets(self.eval_think_budgets)

    def _check_budget_choices(self) -> None:
        from training.budget_sampling import parse_budget_choices

        if self.rollout_budget_per not in ("group", "sample"):
            raise ValueError(f"rollout_budget_per must be 'group' or 'sample'; got {self.rollout_budget_per!r}")
        try:
            drawn = parse_budget_choices(self.rollout_budget_choices)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if drawn is None:
            if self.budget_aware_advantages:
                raise ConfigError("budget_aware_advantages needs budgets that differ: set rollout_budget_choices "
                                  "(e.g. '0,4,8,16,32')")
            return
        if not self.forced_answering:
            raise ConfigError("rollout_budget_choices draws budgets to force answers at: keep forced_answering "
                              "true, or use the fixed rollout_think_budget")
        if drawn.max_budget + self.answer_reserve + 3 > self.max_new_tokens:
            raise ConfigError(f"the largest drawn budget ({drawn.max_budget}) + answer_reserve ({self.answer_reserve})"
                              f" + 3 exceeds max_new_tokens ({self.max_new_tokens}): raise max_new_tokens to at "
                              f"least {drawn.max_budget + self.answer_reserve + 3}")

    def _check_rollout_engine_layout(self) -> None:
        """vLLM-only settings; whether the TP size divides the world size is checked once the
        ranks are known (training.train), and sleep mode's platform when the engine is built."""
        if self.rollout_tensor_parallel_size < 1:
            raise ConfigError(f"rollout_tensor_parallel_size must be >= 1; got {self.rollout_tensor_parallel_size}")
        if self.weight_sync_bucket_mb <= 0:
            raise ConfigError(f"weight_sync_bucket_mb must be > 0; got {self.weight_sync_bucket_mb}")
        if self.rollout_engine == "hf" and (self.rollout_tensor_parallel_size > 1 or self.vllm_sleep_mode):
            raise ConfigError("rollout_tensor_parallel_size > 1 and vllm_sleep_mode are vLLM settings; "
                              "rollout_engine is hf")

    def domain_weights(self) -> dict[str, float] | None:
        if not self.domain_mix.strip():
            return None
        out = {}
        for part in self.domain_mix.split(","):
            name, _, value = part.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"domain_mix: expected domain=weight, got {part.strip()!r}") from None
            if out[name.strip()] < 0 or not name.strip():
                raise ConfigError(f"domain_mix: weights must be >= 0 and domains named; got {part.strip()!r}")
        return out

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> GRPOConfig:
        """Read a YAML mapping, then apply `--field value` overrides; paths as the module doc says."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of config fields, got {type(raw).__name__}")
        _check_names(raw, f"{path}: unknown config field")
        resolve_paths(raw, Path(path).resolve().parent)
        flags = vars(build_parser(cls).parse_args(overrides or [], namespace=_Overrides()))
        _check_names(flags, "unknown flag")
        resolve_paths(flags, Path.cwd())
        raw.update(flags)
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PATH_FIELDS = ("model", "train_data", "output_dir", "eval_data")
RENAMED = {"repetition_penalty": "repetition_penalty_weight", "language_mix_penalty": "language_mix_penalty_weight"}


def resolve_paths(values: dict[str, Any], base: Path) -> None:
    """Make relative path fields absolute against `base` (see the module doc for `model`)."""
    for key in PATH_FIELDS:
        value = values.get(key)
        if not value or Path(value).is_absolute() or value == "tiny":
            continue
        if key != "model" or (base / value).exists():
            values[key] = str((base / value).resolve())


def _check_names(raw: dict[str, Any], what: str) -> None:
    for old, new in RENAMED.items():
        if old in raw:
            raise ValueError(f"config field {old!r} was renamed {new!r} (the reward penalty weight, not the "
                             "sampling parameter)")
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(GRPOConfig)})
    if unknown:
        raise ValueError(f"{what}s {unknown}; see `thinkcap train --help`")


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump (the CLI exits 2)
        raise ConfigError(message.replace("argument ", "flag "))


def build_parser(cls: type = GRPOConfig) -> argparse.ArgumentParser:
    """`--field-name` (and the YAML key spelling `--field_name`) for every field."""
    parser = _Parser(prog="thinkcap train CONFIG.yaml", add_help=False, argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flags = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        parser.add_argument(*flags, dest=f.name, type=_parser_type(hints[f.name]), metavar=f.name.upper(),
                            help=f"{f.metadata['help']} (default: {f.default!r})")
    for old, new in RENAMED.items():
        parser.add_argument(f"--{old.replace('_', '-')}", f"--{old}", dest=old, help=argparse.SUPPRESS)
    return parser
