"""A request's budget once its prompt and max_tokens are known: the answer reserve applied.

The engine's processor and the server's response builder both call `resolve_params` with the
same inputs (request params, prompt ids, the engine's final max_tokens), so the `thinkcap` object
reports exactly what the engine enforced, with no channel back from the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from budget.params import BudgetParams, answer_room
from budget.profile import ThinkProfile
from budget.state import Phase, prompt_phase


def resolve_params(profile: ThinkProfile, params: BudgetParams | None, prompt_ids: Sequence[int],
                   max_tokens: int | None) -> BudgetParams | None:
    """`params` with the think budget and `answer_reserve` fitted into `max_tokens` by the fit rule
    (`budget.fit`): an explicit budget that fits next to the reserve's floor is kept. Params without a reserve
    pass unchanged. When max_tokens cannot hold `<think>` plus the closing sequence, nothing is
    enforced (think_budget None, answer_reserve 0): the request runs as plain vLLM would run it."""
    if params is None or params.answer_reserve is None or max_tokens is None:
        return params
    phase = prompt_phase(profile, prompt_ids)
    if phase == Phase.ANSWER:  # the prompt already closed thinking: nothing to budget
        return replace(params, think_budget=None, min_think_tokens=0, open_thinking=False, answer_reserve=0)
    prefix = 0 if phase == Phase.THINKING else 1  # the `<think>` the model (or we) will write
    # The fit rule (budget.fit): the reserve shrinks to its floor before an explicit budget does.
    fitted = answer_room(max_tokens, len(profile.closing_ids), prefix, params.answer_reserve, params.think_budget)
    if fitted is None:
        return replace(params, think_budget=None, min_think_tokens=0, open_thinking=False, answer_reserve=0)
    room, reserve = fitted
    budget = room if params.think_budget is None else min(params.think_budget, room)
    # Grace goes past the budget, so it takes what room the budget leaves (the budget is kept first).
    return replace(params, think_budget=budget, min_think_tokens=min(params.min_think_tokens, budget),
                   answer_reserve=reserve, grace=min(params.grace, room - budget))


def enforces(params: BudgetParams | None) -> bool:
    """Whether the processor has anything to do for these (resolved) params."""
    return params is not None and (params.think_budget is not None or params.min_think_tokens > 0
                                   or params.open_thinking)
