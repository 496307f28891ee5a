"""Checks of the optional LoRA and held-out evaluation settings, run by `GRPOConfig.__post_init__`.

Each option takes effect or is refused: a `lora_*` field set while `lora_rank` is 0, or an `eval_*`
field set while `eval_every` is 0, would change nothing, so it is an error that names the switch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

from budget.fit import LONGEST_CLOSING, RESERVE_FLOOR, tokens_needed
from training.config_load import ConfigError


def _changed(cfg: Any, prefix: str, switch: str) -> list[str]:
    return [f.name for f in dataclasses.fields(cfg)
            if f.name.startswith(prefix) and f.name != switch and getattr(cfg, f.name) != f.default]


def check_lora(cfg: Any) -> None:
    if cfg.lora_rank < 0:
        raise ConfigError(f"lora_rank must be >= 0; got {cfg.lora_rank}")
    if cfg.lora_rank == 0:
        if changed := _changed(cfg, "lora_", "lora_rank"):
            raise ConfigError(f"{', '.join(changed)} set but lora_rank is 0 (LoRA off): set lora_rank > 0")
        return
    if importlib.util.find_spec("peft") is None:
        raise ConfigError(f"lora_rank={cfg.lora_rank} needs peft: pip install -e '.[lora]' (./install.sh installs it)")
    if cfg.distributed == "fsdp":
        raise ConfigError("lora_rank > 0 with distributed=fsdp is not supported (FSDP2 would shard the frozen base "
                          "and the adapters alike, and the merged weights for rollouts need the full base): "
                          "use distributed=ddp, or lora_rank=0")
    if cfg.lora_alpha <= 0 or not 0 <= cfg.lora_dropout < 1:
        raise ConfigError(f"need lora_alpha > 0 and 0 <= lora_dropout < 1; got {cfg.lora_alpha}, {cfg.lora_dropout}")
    if not cfg.lora_modules():
        raise ConfigError("lora_target_modules names no module")


def check_eval(cfg: Any) -> None:
    if isinstance(cfg.eval_think_budgets, (list, tuple)):  # a YAML list
        cfg.eval_think_budgets = ",".join(str(b) for b in cfg.eval_think_budgets)
    if cfg.eval_every < 0:
        raise ConfigError(f"eval_every must be >= 0; got {cfg.eval_every}")
    if cfg.eval_every == 0:
        if changed := _changed(cfg, "eval_", "eval_every"):
            raise ConfigError(f"{', '.join(changed)} set but eval_every is 0 (evaluation off): set eval_every > 0")
        return
    if not cfg.eval_data:
        raise ConfigError("eval_every > 0 needs eval_data (a JSONL of held-out records)")
    if cfg.eval_samples < 1 or cfg.eval_temperature < 0:
        raise ConfigError(f"need eval_samples >= 1 and eval_temperature >= 0; got {cfg.eval_samples}, "
                         f"{cfg.eval_temperature}")
    if cfg.eval_samples > 1 and cfg.eval_temperature == 0:
        raise ConfigError(f"eval_samples={cfg.eval_samples} with eval_temperature 0 repeats one greedy answer: "
                          "set eval_temperature > 0")
    for budget in parse_eval_budgets(cfg.eval_think_budgets):
        check_fits(cfg, budget, "eval think budget")


def check_fits(cfg: Any, budget: int, what: str, closing_len: int = LONGEST_CLOSING) -> None:
    """The budget fit rule (budget.fit) must keep `budget` inside max_new_tokens: `<think>`, the
    budget, the closing sequence and the answer reserve's floor. Before the tokenizer is loaded the
    longest known closing is assumed; train() checks again with the profile's own."""
    need = tokens_needed(budget, closing_len, cfg.answer_reserve, prefix_tokens=1)
    if need > cfg.max_new_tokens:
        raise ConfigError(f"{what} ({budget}) + answer_reserve (at least {min(cfg.answer_reserve, RESERVE_FLOOR)}) "
                          f"+ <think> and {closing_len} closing tokens exceeds max_new_tokens ({cfg.max_new_tokens}): "
                          f"raise max_new_tokens to at least {need} or lower the budget")


def parse_eval_budgets(text: str) -> list[int]:
    """'0,32,128' → [0, 32, 128]: distinct budgets >= 0."""
    try:
        budgets = [int(b) for b in str(text).split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"eval_think_budgets: expected integers like '0,32,128', got {text!r}") from None
    if not budgets or min(budgets) < 0 or len(set(budgets)) != len(budgets):
        raise ConfigError(f"eval_think_budgets: need distinct budgets >= 0, got {text!r}")
    return budgets


def check_anytime(cfg: Any) -> None:
    """`anytime_cuts` cuts each thought of one fixed budget, scores every cut, and sets advantages
    itself: the settings that would change the budget per sample or the advantages are refused."""
    if not cfg.anytime_cuts.strip():
        if cfg.anytime_answers != 2:
            raise ConfigError("anytime_answers set but anytime_cuts is empty (the arm is off): set anytime_cuts")
        return
    from training.rollout.anytime import parse_cuts

    try:
        cuts = parse_cuts(cfg.anytime_cuts)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    budget = cfg.rollout_think_budget
    if budget is None or cfg.rollout_budget_choices.strip():
        raise ConfigError("anytime_cuts cuts thoughts rolled out under one fixed rollout_think_budget: set it and "
                          "leave rollout_budget_choices empty")
    if cuts[-1] >= budget:
        raise ConfigError(f"anytime_cuts must be below rollout_think_budget ({budget}), which is always the last "
                          f"cut; got {cfg.anytime_cuts!r}")
    if cfg.anytime_answers < 1:
        raise ConfigError(f"anytime_answers must be >= 1; got {cfg.anytime_answers}")
    clashes = {"forced_answering": not cfg.forced_answering,
               "form_exploration": cfg.form_exploration, "forced_close_penalty": cfg.forced_close_penalty,
               "budget_length_coef": cfg.budget_length_coef}
    if on := [name for name, set_ in clashes.items() if set_]:
        raise ConfigError(f"anytime_cuts scores every cut of a thought with the task's reward and sets the "
                          f"advantages itself; it does not combine with {', '.join(on)}: leave "
                          f"{'it' if len(on) == 1 else 'them'} at the default or anytime_cuts empty")
