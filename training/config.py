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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import config_load
from budget.hint import BudgetHint, HintError
from training.config_checks import check_anytime, check_eval, check_fits, check_lora, parse_eval_budgets
from training.config_load import ConfigError, load_yaml, setting


FORMS = 2  # thought forms of the tasks that have them (running_sum: long and short)


@dataclass
class GRPOConfig:
    # ---- model and data ------------------------------------------------------------------------
    model: str = setting("tiny", "HF model folder to start from; 'tiny' builds/uses the tiny random GLM-4.1V")
    train_data: str = setting("", "JSONL of training records (see docs/training.md); required")
    output_dir: str = setting("runs/grpo", "where checkpoints, TensorBoard events, metrics.jsonl and the plot go")
    system_prompt: str = setting("", "system message prepended to every prompt; empty for none")
    seed: int = setting(0, "seeds sampling of prompts, rollouts and weight init of anything random")
    dtype: str = setting("float32", "dtype of the policy's master weights and optimizer state: float32 or bfloat16")
    compute_dtype: str = setting("float32", "dtype of forward/backward: bfloat16 runs them in bf16 (autocast, or FSDP2's "
                                       "mixed precision) while weights and optimizer state stay in `dtype`")

    # ---- schedule ------------------------------------------------------------------------------
    steps: int = setting(20, "RL iterations (one rollout batch + its updates each)")
    prompts_per_step: int = setting(8, "prompts per iteration over all ranks (each gives group_size samples)")
    group_size: int = setting(8, "samples per prompt (G in GRPO)")
    num_minibatches: int = setting(1, "optimizer steps per rollout batch (and epoch); >1 makes the update off-policy, so "
                                 "clipping acts. Not a memory setting: see micro_batch_size")
    micro_batch_size: int = setting(0, "rows per forward/backward on each rank; a minibatch's micro-batches accumulate "
                                  "gradients into one optimizer step (same result, less memory); 0 = whole minibatch")
    gradient_checkpointing: bool = setting(False, "recompute each decoder layer's activations in backward (less memory, ~1/3 more compute)")
    logprob_chunk_size: int = setting(1024, "response tokens per chunk of lm_head + log-softmax: only response positions are "
                                       "scored, one [chunk, vocab] fp32 block at a time (never [batch, seq, vocab])")
    distributed: str = setting("ddp", "under torchrun: ddp (replicated policy) or fsdp (FSDP2 fully_shard: parameters, "
                                 "gradients and optimizer state sharded; checkpoints through torch.distributed.checkpoint)")
    ppo_epochs: int = setting(1, "passes over each rollout batch")
    lr: float = setting(1e-6, "AdamW learning rate (constant after warm-up)")
    lr_warmup_steps: int = setting(0, "optimizer steps of linear LR warm-up")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping norm; <= 0 disables")

    # ---- rollouts ------------------------------------------------------------------------------
    rollout_engine: str = setting("auto", "vllm, hf or auto (vllm when importable, else hf); under torchrun every rank "
                                     "runs its own colocated vLLM engine (external launcher, data parallel)")
    temperature: float = setting(1.0, "sampling temperature of rollouts")
    top_p: float = setting(1.0, "nucleus sampling of rollouts; the report keeps 1.0 so every token can be explored")
    max_new_tokens: int = setting(256, "most response tokens per sample (thinking + closing + answer)")
    rollout_think_budget: int | None = setting(128, "most thinking tokens per sample; null for no budget")
    answer_reserve: int = setting(16, "response tokens kept free for the answer after a forced close")
    forced_answering: bool = setting(True, "at the budget force </think><answer> and let the sample answer; "
                                      "false: cut the sample there and give it min_reward")
    rollout_budget_choices: str = setting("", "draw each rollout's thinking budget instead of the fixed rollout_think_budget: "
                                         "'0,4,8,16,32' (uniform over the list) or 'loguniform:4-64'; the drawn "
                                         "budget is recorded per sample; empty = off")
    rollout_budget_per: str = setting("group", "with rollout_budget_choices: one budget per prompt group, or per sample "
                                          "(a group then holds each listed budget about equally often)")
    budget_aware_advantages: bool = setting(False, "normalise rewards within the samples of a group that share a budget, "
                                              "so short-budget samples are not judged against long ones")
    budget_hint: str = setting("", "tell the model its budget in the prompt: a template with one {budget}, e.g. 'Think "
                               "for at most {budget} tokens.' (budget.hint, the function thinkcap serve uses); each "
                               "sample is shown the budget the engine enforces for it, and every exported policy "
                               "records the hint (thinkcap_policy.json) so thinkcap serve applies it; empty = off")
    forced_close_penalty: float = setting(0.0, "subtracted from the reward of a sample whose thought was cut by the budget "
                                               "(LCPO-max's length term where the budget is enforced: a thought that "
                                               "fits its budget beats one that does not); 0 = off")
    budget_length_coef: float = setting(0.0, "LCPO-Exact's length term (L1, Aggarwal & Welleck 2025): the reward is "
                                             "lowered by this x |thinking tokens - the sample's enforced budget|, so "
                                             "the budget is a target length and a large one rewards the longer "
                                             "thought it allows; needs a budget (fixed or drawn); 0 = off")
    budget_length_passed_only: bool = setting(False, "apply budget_length_coef only to samples that pass "
                                              "(pass_threshold): a tie-break among right answers; otherwise the std "
                                              "in the advantage scales the length differences of an all-wrong group "
                                              "to full weight and reinforces wrong answers by their length")
    budget_balance: str = setting("off", "with rollout_budget_choices: scale each drawn budget's advantages so every "
                                  "budget pushes equally hard in a step (at most 4x up). mass: the same total "
                                  "|advantage| (dynamic sampling keeps more groups of the budget whose samples "
                                  "disagree more, and that budget would otherwise decide for all); length: the "
                                  "same |sum of advantage x (thinking tokens - the budget's mean)|, so a budget "
                                  "that wants longer thoughts and one that wants shorter ones cancel on what they "
                                  "share and leave what tells them apart (the hint); off")
    form_exploration: float = setting(0.0, "share of each group whose thought is opened in a given form, the forms "
                                      "in turn (tasks with thought forms: running_sum's long `a3=` and short `a3 b`): "
                                      "the opening is part of that sample's prompt and counts against its budget; "
                                      "opened samples are not trained on, they only join their (prompt, budget) "
                                      "group's baseline, so the free samples' advantages say which form pays under "
                                      "that budget even when the policy has stopped writing one; logged form shares "
                                      "count free samples only. 0 = off")
    form_credit: float = setting(0.0, "with form_exploration: credit the choice of form itself. Each (prompt, budget) "
                                 "subgroup whose two forms score differently (opened and free samples of each form "
                                 "pooled) adds one one-token sample per form: the token where the forms part, after "
                                 "the prompt and their shared first tokens, with advantage form_credit x (that form's "
                                 "mean reward - the mean over forms). The choice is pushed towards the form that pays "
                                 "under that budget even when the policy no longer writes the other one. The rest is "
                                 "content: every sample, opened ones included, is then trained with its advantage "
                                 "against the samples of its own form under its budget, so each form's content is "
                                 "trained whichever form the policy prefers. 0 = off")
    anytime_cuts: str = setting("", "AnytimeReasoner's arm: thinking budgets below rollout_think_budget, e.g. '4,8,16', where "
                                "each rollout's thought is also cut (the closing sequence forced there, as the server "
                                "does) and answered; the thought's advantage is its mean reward over the cuts and its "
                                "own ending, each answer's is against the answers from the same prefix "
                                "(training/rollout/anytime.py); empty = off")
    anytime_answers: int = setting(2, "with anytime_cuts: answers sampled per cut (the rollout's own answer is one of "
                                   "them at its ending); 1 = the thoughts are trained, the answers are not")
    vllm_max_model_len: int = setting(2048, "vLLM context length (prompt + response)")
    vllm_gpu_memory_utilization: float = setting(0.3, "GPU memory share of the colocated vLLM engine (ignored on CPU)")
    vllm_max_images: int | None = setting(None, "vLLM's limit_mm_per_prompt for images; null: the most any training record has")
    vllm_max_videos: int | None = setting(None, "vLLM's limit_mm_per_prompt for videos; null: the most any training record has")
    vllm_log_level: str = setting("error", "vLLM's log level in training (its per-step load notices bury the progress "
                                      "line); the VLLM_LOGGING_LEVEL environment variable wins when set")
    rollout_tensor_parallel_size: int = setting(1, "under torchrun: ranks per vLLM engine (tensor parallel inside each group of "
                                              "consecutive ranks, data parallel over the groups); must divide the world size")
    weight_sync_bucket_mb: float = setting(512, "the weight push after each update gathers (FSDP2) and hands the policy's "
                                           "weights to vLLM this many MB at a time: the extra memory is one bucket")
    vllm_sleep_mode: bool = setting(False, "put vLLM to sleep after the rollouts (weights to host memory, KV cache freed) and "
                                      "wake it for the weight push; GPU only (vLLM has no sleep mode on CPU)")

    # ---- rewards -------------------------------------------------------------------------------
    min_reward: float = setting(0.0, "reward of a malformed or truncated response (the minimum reward)")
    repetition_penalty_weight: float = setting(0.5, "reward penalty weight for repeated text (x share of repeated 4-grams); "
                                                "not the sampling parameter repetition_penalty")
    language_mix_penalty_weight: float = setting(0.5, "reward penalty weight for mixed languages (x share of minority-script words)")
    judge_url: str = setting("", "OpenAI-compatible base URL of a judge model scoring answer fluency / instruction "
                            "compliance 0-10 (scoring/judge.py); empty = off")
    judge_model: str = setting("", "model name sent to the judge server")
    judge_weight: float = setting(0.2, "reward penalty weight of the judge: reward -= weight x (1 - score/10)")
    pass_threshold: float = setting(0.5, "a sample 'passes' (for pass@k, pass rate, curriculum) when its accuracy >= this")

    # ---- algorithm -----------------------------------------------------------------------------
    advantage_estimator: str = setting("grpo", "grpo: group-centred rewards (divided by the std: scale_advantages); "
                                       "best: only each group's best sample is reinforced, weight 1 shared among "
                                       "ties, the rest 0, and only when it passes (pass_threshold) (RAFT-style; "
                                       "one equal vote per group with a passing best sample, so a "
                                       "budget whose rewards differ by a length tie-break weighs as much as one "
                                       "with a large accuracy gap)")
    scale_advantages: bool = setting(True, "divide group-centred rewards by the group std (GRPO); false: centre only")
    clip_low: float = setting(0.2, "PPO ratio clip below 1 - clip_low")
    clip_high: float = setting(0.28, "PPO ratio clip above 1 + clip_high (clip-higher > clip_low keeps exploration)")
    loss_aggregation: str = setting("sample", "sample: token mean within a sample, then mean over samples; token: mean over all tokens")
    kl_coef: float = setting(0.0, "weight of the k3 KL to the initial policy (needs a frozen reference copy); 0 = none")

    # ---- curriculum and dynamic sampling -------------------------------------------------------
    domain_mix: str = setting("", "per-domain sampling weights, 'counting=2,exact=0.5' (unlisted domains weigh 1): "
                             "within a tier, records are drawn in proportion to their domain's weight; empty = uniform")
    curriculum: bool = setting(True, "RLCS: sample prompts by difficulty tier, re-weighted each iteration")
    num_tiers: int = setting(3, "difficulty tiers (0 = easiest); records carry `difficulty` from `--label-difficulty`")
    tier_ema: float = setting(0.7, "EMA factor of each tier's share of informative groups (0 < x < 1)")
    tier_min_weight: float = setting(0.05, "floor of a tier's sampling weight so no tier starves")
    online_window: int = setting(4, "rollouts per prompt remembered for its online pass rate / tier")
    dynamic_sampling: bool = setting(True, "drop groups whose rewards all equal (no signal) and oversample to refill")
    max_refill_rounds: int = setting(2, "extra rollout rounds per step while dynamic sampling left fewer than "
                                   "prompts_per_step informative groups (verl's filter_groups); 0 = train on what is left")
    oversample_ema: float = setting(0.9, "EMA factor of the expansion ratio 1/(1 - invalid_rate)")
    max_oversample: float = setting(3.0, "cap on the oversampling factor")

    # ---- LoRA (optional; needs peft: pip install -e ".[lora]") ---------------------------------
    lora_rank: int = setting(0, "rank of LoRA adapters on the language model's linear layers (training/learner/lora.py): only the "
                           "adapters train; rollouts and policy/ get the merged weights; 0 = full fine-tuning")
    lora_alpha: float = setting(16.0, "LoRA scaling numerator: the update is (lora_alpha / lora_rank) * B @ A")
    lora_dropout: float = setting(0.0, "dropout on the LoRA branch's input in training forwards (0 <= x < 1)")
    lora_target_modules: str = setting("q_proj,k_proj,v_proj,o_proj,gate_up_proj,down_proj",
                                  "comma-separated names of the language model's linear layers that get adapters "
                                  "(the vision tower, embeddings and lm_head stay frozen)")

    # ---- held-out evaluation (training/heldout.py) ---------------------------------------------
    eval_data: str = setting("", "JSONL of held-out records (training format), scored like `thinkcap eval` every eval_every steps")
    eval_every: int = setting(0, "evaluate on eval_data every N steps and at the last step; 0 = off")
    eval_think_budgets: str = setting("32", "thinking budgets to evaluate at, comma-separated ('0,32,128'; a YAML list works "
                                       "too): at each the answer is forced as in rollouts")
    eval_samples: int = setting(1, "responses per eval record and budget (accuracy is their mean); > 1 needs eval_temperature > 0")
    eval_temperature: float = setting(0.0, "sampling temperature of eval responses; 0 = greedy")

    # ---- running it ----------------------------------------------------------------------------
    save_every: int = setting(10, "save a checkpoint every N steps (and at the end); 0 = only at the end")
    keep_checkpoints: int = setting(2, "newest checkpoints kept on disk")
    resume: bool = setting(True, "continue from the newest checkpoint in output_dir when there is one")
    tensorboard: bool = setting(True, "write TensorBoard scalars under output_dir/tb")
    wandb_project: str = setting("", "also log every scalar to Weights & Biases under this project (needs `pip install "
                                "wandb`); empty = off")
    progress_bar: bool = setting(True, "print one progress line per step (reward, accuracy, thinking tokens, forced rate, time)")

    def __post_init__(self) -> None:
        choices = {"rollout_engine": ("auto", "vllm", "hf"), "loss_aggregation": ("sample", "token"),
                   "advantage_estimator": ("grpo", "best"), "budget_balance": ("off", "mass", "length"),
                   "dtype": ("float32", "bfloat16"), "compute_dtype": ("float32", "bfloat16"),
                   "distributed": ("ddp", "fsdp"), "vllm_log_level": ("debug", "info", "warning", "error")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("steps", "prompts_per_step", "group_size", "num_minibatches", "ppo_epochs", "max_new_tokens",
                     "num_tiers", "online_window", "keep_checkpoints", "logprob_chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("answer_reserve", "save_every", "lr_warmup_steps", "micro_batch_size", "max_refill_rounds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0; got {getattr(self, name)}")
        if self.group_size < 2:
            raise ConfigError("group_size must be >= 2: GRPO's advantage compares samples of one prompt")
        if self.advantage_estimator == "best" and not self.scale_advantages:
            raise ConfigError("scale_advantages applies to advantage_estimator grpo only (best gives weight 1 to each "
                              "group's best sample, nothing to scale): leave scale_advantages true or use grpo")
        if self.num_minibatches > self.group_size:
            raise ConfigError(f"num_minibatches ({self.num_minibatches}) must be <= group_size ({self.group_size}) "
                             "so every minibatch holds samples even when one group is left after dynamic sampling")
        if not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise ConfigError(f"need 0 <= clip_low < 1 and clip_high >= 0; got {self.clip_low}, {self.clip_high}")
        if not 0 < self.top_p <= 1 or self.temperature <= 0:
            raise ConfigError(f"need 0 < top_p <= 1 and temperature > 0; got {self.top_p}, {self.temperature}")
        budget = self.rollout_think_budget
        if budget is not None and budget < 0:
            raise ConfigError(f"rollout_think_budget must be >= 0 or null; got {budget}")
        fixed = not self.rollout_budget_choices.strip()  # drawn budgets are checked in _check_budget_choices
        if fixed and budget is not None:
            check_fits(self, budget, "rollout_think_budget")
        self._check_budget_choices()
        check_anytime(self)
        if not self.forced_answering and budget is None:
            raise ConfigError("forced_answering=false cuts samples at rollout_think_budget; set a budget")
        self.hint()  # parses, or raises naming the field
        if self.forced_close_penalty < 0:
            raise ConfigError(f"forced_close_penalty must be >= 0; got {self.forced_close_penalty}")
        if self.budget_length_coef < 0:
            raise ConfigError(f"budget_length_coef must be >= 0; got {self.budget_length_coef}")
        if self.budget_length_coef and budget is None and fixed:
            raise ConfigError("budget_length_coef needs a budget to aim at: set rollout_think_budget or "
                              "rollout_budget_choices, or leave budget_length_coef at 0")
        if self.budget_balance != "off" and fixed:
            raise ConfigError("budget_balance weighs drawn budgets against each other: set rollout_budget_choices "
                              "(e.g. '8,32') or leave budget_balance off")
        if not 0 <= self.form_exploration < 1:
            raise ConfigError(f"form_exploration is a share of each group in [0, 1); got {self.form_exploration}")
        if self.form_exploration and self.group_size < 3:
            raise ConfigError("form_exploration opens one sample per form and keeps one free: group_size must be "
                              f">= 3; got {self.group_size}")
        if self.form_credit < 0:
            raise ConfigError(f"form_credit must be >= 0; got {self.form_credit}")
        if self.form_credit and not self.form_exploration:
            raise ConfigError("form_credit credits the form choice from opened samples: set form_exploration "
                              "(e.g. 0.5) or leave form_credit at 0")
        if self.form_credit and round(self.form_exploration * self.group_size) < 2 * FORMS:
            # One opened sample of a form the policy no longer writes is alone in its (budget, form)
            # subgroup: advantage 0, so that form's content would go untrained after all.
            raise ConfigError(f"form_credit trains each form's content against its own samples, so each group needs "
                              f"at least 2 opened samples per form ({2 * FORMS}): round(form_exploration x group_size) "
                              f"is {round(self.form_exploration * self.group_size)}; raise form_exploration "
                              f"(e.g. 0.5 with group_size 8) or group_size")
        if self.form_credit and self.rollout_budget_choices.strip() and self.rollout_budget_per == "sample":
            raise ConfigError("form_credit compares the forms within a (prompt, budget) group, and budgets drawn per "
                              "sample split each group into subgroups too small to hold both forms: set "
                              "rollout_budget_per 'group' or leave form_credit at 0")
        if self.budget_length_passed_only and not self.budget_length_coef:
            raise ConfigError("budget_length_passed_only limits budget_length_coef, which is 0: set "
                              "budget_length_coef or leave budget_length_passed_only false")
        for name in ("tier_ema", "oversample_ema"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in (0, 1); got {getattr(self, name)}")
        if self.max_oversample < 1:
            raise ConfigError(f"max_oversample must be >= 1; got {self.max_oversample}")
        if not 0 <= self.tier_min_weight < 1 / self.num_tiers:
            raise ConfigError(f"tier_min_weight must be in [0, 1/num_tiers) = [0, {1 / self.num_tiers:.3f})")
        for name in ("vllm_max_images", "vllm_max_videos"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 or null; got {getattr(self, name)}")
        if self.wandb_project and importlib.util.find_spec("wandb") is None:
            raise ConfigError(f"wandb_project={self.wandb_project!r} needs wandb: pip install wandb (or leave it empty)")
        self.domain_weights()  # parses, or raises naming the bad part
        if self.judge_url and not self.judge_model:
            raise ConfigError("judge_url is set: also set judge_model (the name the judge server serves)")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef must be >= 0; got {self.kl_coef}")
        self._check_rollout_engine_layout()
        self._check_lora()
        self._check_eval()

    def _check_lora(self) -> None:
        check_lora(self)

    def lora_modules(self) -> list[str]:
        return [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]

    def _check_eval(self) -> None:
        check_eval(self)

    def hint(self) -> BudgetHint | None:
        if not self.budget_hint.strip():
            return None
        try:
            return BudgetHint(self.budget_hint)
        except HintError as exc:
            raise ConfigError(f"budget_hint: {exc}") from None

    def eval_budgets(self) -> list[int]:
        return parse_eval_budgets(self.eval_think_budgets)

    def _check_budget_choices(self) -> None:
        from training.rollout.budget_sampling import parse_budget_choices

        if self.rollout_budget_per not in ("group", "sample"):
            raise ConfigError(f"rollout_budget_per must be 'group' or 'sample'; got {self.rollout_budget_per!r}")
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
        check_fits(self, drawn.max_budget, "the largest drawn budget")

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
        return load_yaml(cls, path, overrides, prog=PROG, path_fields=PATH_FIELDS, renamed=RENAMED)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROG = "thinkcap train CONFIG.yaml"
PATH_FIELDS = ("model", "train_data", "output_dir", "eval_data")
# the reward penalty weights, not the sampling parameter of that name
RENAMED = {"repetition_penalty": "repetition_penalty_weight", "language_mix_penalty": "language_mix_penalty_weight"}


def build_parser(cls: type = GRPOConfig) -> argparse.ArgumentParser:
    return config_load.build_parser(cls, PROG, RENAMED)
