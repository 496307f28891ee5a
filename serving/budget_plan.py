"""From a request to the budget the engine applies.

Two steps, because the effective budget depends on the prompt's length (the default max_tokens is
what is left of the context) and the prompt depends on whether a budget applies:

1. `requested_budget` — `think_budget` (or its alias) if sent, else `reasoning_effort` through the
   server's table, else `--default-think-budget`.
2. `finalize` — after the prompt is rendered: resolve max_tokens like vLLM does, then shrink the
   budget with `budget.effective_budget` so the forced answer keeps `--answer-reserve` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from budget import BudgetError, BudgetParams, Phase, ThinkProfile, effective_budget, prompt_phase
from serving.errors import APIError
from serving.protocol import ChatCompletionRequest
from serving.settings import ServerSettings


def requested_budget(req: ChatCompletionRequest, settings: ServerSettings) -> int | None:
    if req.budget_given:
        return req.requested_budget
    if req.reasoning_effort is not None:
        table = settings.reasoning_effort_budgets
        if req.reasoning_effort not in table:
            raise APIError(f"reasoning_effort {req.reasoning_effort!r} is not configured on this server "
                           f"(known: {', '.join(table) or 'none'})", param="reasoning_effort")
        return table[req.reasoning_effort]
    return settings.default_think_budget


def budget_applies(req: ChatCompletionRequest, requested: int | None) -> bool:
    """Whether the prompt should open thinking: the client (or server default) limited it."""
    return requested is not None or req.output_limit is not None or bool(req.min_think_tokens)


@dataclass(frozen=True)
class BudgetPlan:
    requested: int | None
    effective: int | None
    max_tokens: int
    params: BudgetParams | None  # None: nothing for the logits processor to do


def checked_budget(requested: int | None, max_tokens: int | None, closing: int, reserve: int, prefix: int,
                   min_think: int) -> BudgetParams:
    """`budget.effective_budget` + `BudgetParams`, with errors naming the field the client must change."""
    try:
        effective = effective_budget(requested, max_tokens, closing, reserve, prefix)
    except BudgetError as exc:
        raise APIError(str(exc), param="max_tokens") from None
    try:
        return BudgetParams(think_budget=effective, min_think_tokens=min_think)
    except BudgetError as exc:
        raise APIError(str(exc), param="min_think_tokens") from None


def resolve_max_tokens(requested: int | None, prompt_len: int, max_model_len: int) -> int:
    room = max_model_len - prompt_len
    if room <= 0:
        raise APIError(f"the prompt is {prompt_len} tokens; this model's context is {max_model_len} tokens, "
                       "which leaves no room for a response", param="messages")
    return room if requested is None else min(requested, room)


def finalize(
    req: ChatCompletionRequest,
    requested: int | None,
    profile: ThinkProfile,
    prompt_ids: list[int],
    max_model_len: int,
    answer_reserve: int,
) -> BudgetPlan:
    """APIError (400) when max_tokens cannot hold the closing sequence plus the reserve."""
    max_tokens = resolve_max_tokens(req.output_limit, len(prompt_ids), max_model_len)
    phase = prompt_phase(profile, prompt_ids)
    # The model writes `<think>` itself unless the prompt opened it; a prefilled answer needs no close.
    prefix = 0 if phase in (Phase.THINKING, Phase.ANSWER) else 1
    closing = 0 if phase == Phase.ANSWER else len(profile.closing_ids)
    params = checked_budget(requested, max_tokens, closing, answer_reserve, prefix, req.min_think_tokens or 0)
    return BudgetPlan(requested, params.think_budget, max_tokens, params if params.active else None)
