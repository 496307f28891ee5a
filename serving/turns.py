"""`think_budget_scope: "turn"`: one think budget for a whole tool-using turn (issue 20.4).

An agent loop sends the conversation again after every tool call. With the scope `request` (the
default) each of those requests gets the whole budget; with `turn`, the thinking the model already
did in this turn, the assistant messages after the last user message, is taken off it:

| dialect   | the turn starts after                                 | thinking counted                          |
|-----------|-------------------------------------------------------|-------------------------------------------|
| chat      | the last `role: user` message (`tool` messages do not) | `reasoning_content` (or `reasoning`)      |
| messages  | the last user message that is not only `tool_result`s  | `thinking` blocks (Anthropic's interleaved thinking: one `budget_tokens` for the turn) |
| responses | the last input item with `role: user`                  | `reasoning` items' text                   |

The text is counted with the model's tokenizer at the door: the count of the ids the model would
see again, which is the thinking it produced unless its text re-tokenizes differently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from budget.params import MIN_THINK_KEY
from serving.errors import APIError

SCOPE_KEY = "think_budget_scope"
SCOPES = ("request", "turn")


def pop_scope(body: dict[str, Any], default: str) -> str:
    scope = body.pop(SCOPE_KEY, None)
    if scope is None:
        return default
    if scope not in SCOPES:
        raise APIError(f"{SCOPE_KEY} must be one of {', '.join(map(repr, SCOPES))}; got {scope!r:.40}", param=SCOPE_KEY)
    return scope


def _is_tool_results(content: Any) -> bool:
    return isinstance(content, list) and bool(content) and all(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _texts(parts: Any, *types: str) -> list[str]:
    return [p.get("text") or p.get("thinking") or "" for p in parts if isinstance(p, dict) and p.get("type") in types] \
        if isinstance(parts, list) else []


def turn_thoughts(kind: str, body: dict[str, Any]) -> list[str]:
    """The thinking texts of this turn's earlier steps, in order."""
    items = body.get("input" if kind == "responses" else "messages")
    if not isinstance(items, list):
        return []
    items = [m for m in items if isinstance(m, dict)]
    if kind == "messages":
        starts = [i for i, m in enumerate(items) if m.get("role") == "user" and not _is_tool_results(m.get("content"))]
    else:
        starts = [i for i, m in enumerate(items) if m.get("role") == "user"]
    turn = items[starts[-1] + 1:] if starts else items
    if kind == "messages":
        return [t for m in turn if m.get("role") == "assistant" for t in _texts(m.get("content"), "thinking")]
    if kind == "responses":
        return [t for m in turn if m.get("type") == "reasoning"
                for t in _texts(m.get("content"), "reasoning_text") or _texts(m.get("summary"), "summary_text")]
    thoughts = (m.get("reasoning_content") or m.get("reasoning") for m in turn if m.get("role") == "assistant")
    return [t for t in thoughts if isinstance(t, str)]


def apply_turn(body: dict[str, Any], prepared: Any, count: Callable[[str], int]) -> Any:
    """The request's budget less the turn's thinking so far, in the params the engine gets (and the
    response is replayed with); the budget asked for and the count stay on `prepared`."""
    spent = sum(count(t) for t in turn_thoughts(prepared.kind, body) if t)
    params = prepared.params
    asked = params.think_budget if params else None
    prepared = replace(prepared, scope="turn", turn_thinking_tokens=spent, asked_budget=asked)
    if asked is None or spent == 0:
        return prepared
    left = max(0, asked - spent)
    params = replace(params, think_budget=left, min_think_tokens=min(params.min_think_tokens, left))
    body["vllm_xargs"].pop(MIN_THINK_KEY, None)  # to_extra_args leaves out a 0
    body["vllm_xargs"].update(params.to_extra_args())
    return replace(prepared, params=params)
