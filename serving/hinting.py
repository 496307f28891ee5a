"""The budget hint on the server: the prompt tells the model the budget the engine will enforce.

`budget.hint.BudgetHint` is the one template function (training uses it too); this module only
finds the conversation in each dialect's body and the budget to show. The budget shown is the one
the fit rule (`budget.fit`) leaves after the answer reserve, computed from the client's max_tokens;
without one, from the context length (the prompt is not counted yet at the door, so a budget that
only the prompt's length would cut is shown uncut). A request without a budget is shown what its
max_tokens leaves for thinking: the engine caps it there too, and training's `full` budget is the
same number. Raw completions get no hint: their prompt is the
client's own text.
"""

from __future__ import annotations

from typing import Any

from budget.fit import fit
from budget.hint import BudgetHint, HintError
from serving.errors import APIError

_CONVERSATION = {"chat": "messages", "chat_batch": "messages", "responses": "input", "messages": "messages"}


def shown_budget(params: Any, max_tokens: int | None, closing_len: int, max_model_len: int) -> int | None:
    """The enforced budget as far as the door can know it (None: the budget layer is off)."""
    if params is None:
        return None
    placed = fit(params.think_budget, max_tokens if max_tokens is not None else max_model_len, closing_len,
                 params.answer_reserve)
    return 0 if placed is None else placed.think_budget


def add_hint(body: dict[str, Any], prepared: Any, hint: BudgetHint, closing_len: int, max_model_len: int) -> str | None:
    """Append the hint to the last user message of the request's conversation, in place; the text
    added (the `thinkcap` object reports it as `budget_hint`), or None.

    A request that continues its own assistant message (`continue_final_message`) is not hinted: it
    carries on a reply written under some earlier prompt, and the client (the demo's Compare,
    `thinkcap eval --ladder`) re-sends that reply's reported `budget_hint` itself (budget.cuts), so
    the cut's prompt is the thought's prompt."""
    key = _CONVERSATION.get(prepared.kind)
    if key is None or not isinstance(body.get(key), list | str) or body.get("continue_final_message"):
        return None
    budget = shown_budget(prepared.params, prepared.max_tokens, closing_len, max_model_len)
    if prepared.kind == "responses" and isinstance(body["input"], str):
        body["input"] = [{"role": "user", "content": body["input"]}]
    conversations = body[key] if prepared.kind == "chat_batch" else [body[key]]
    try:
        hinted = [hint.apply(c, budget) if isinstance(c, list) else c for c in conversations]
    except HintError as exc:
        raise APIError(str(exc), param=key) from None
    body[key] = hinted if prepared.kind == "chat_batch" else hinted[0]
    return None if budget is None else hint.text(budget)
