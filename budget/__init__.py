"""The thinking-budget mechanism as pure Python on token ids (no torch, vllm or transformers).

profile  — which ids open/close thinking and what to force, built from a tokenizer
params   — per-request parameters, validation, answer-reserve arithmetic
state    — the per-request state machine every adapter drives
resolve  — a request's budget once max_tokens and the prompt are known
segments — split a response's ids into reasoning and answer
"""

from budget.params import BudgetError, BudgetParams, effective_budget, params_from_args, parse_think_budget
from budget.profile import FAMILIES, ProfileError, ThinkProfile, build_profile, detect_family
from budget.resolve import enforces, resolve_params
from budget.segments import Segments, boxed_ids, hidden_ids, output_side, split_output
from budget.state import Phase, ThinkState, prompt_phase, replay

__all__ = [
    "FAMILIES", "BudgetError", "BudgetParams", "Phase", "ProfileError", "Segments", "ThinkProfile",
    "ThinkState", "boxed_ids", "build_profile", "detect_family", "effective_budget", "enforces", "hidden_ids", "output_side",
    "params_from_args", "parse_think_budget", "prompt_phase", "replay", "resolve_params", "split_output",
]
