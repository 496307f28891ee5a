"""The controls beside the chat: effort presets, think budget, max tokens, and their agreement.

The presets, the slider and the "unlimited" switch describe one setting, so each change brings
the others in step: a hand-typed budget deselects the preset it no longer matches, and a preset
that needs more room raises Max tokens (which would otherwise cap the budget silently).
"""

from __future__ import annotations

import math

import gradio as gr

from ui.client import Settings

EFFORT_BUDGETS = {"Low": 256, "Medium": 1024, "High": 4096, "Unlimited": None}
MAX_BUDGET = 8192
MAX_TOKENS = 16384
ANSWER_ROOM = 1024  # tokens a preset leaves for the answer after a full thought
# The server keeps a few tokens of max_tokens for `</think><answer>` and a short answer; a
# budget within this margin of max_tokens gets lowered (the reply then says so).
SERVER_MARGIN = 32
TOAST_SECONDS = 8  # toasts go away on their own: stale ones used to pile up


def warn(message: str, title: str) -> None:
    gr.Warning(message, title=title, duration=TOAST_SECONDS)


def needed_max_tokens(budget: int | None) -> int:
    """Max tokens that hold a full thought at this budget plus room for an answer."""
    need = (MAX_BUDGET if budget is None else budget) + ANSWER_ROOM
    return min(MAX_TOKENS, 16 * math.ceil(need / 16))  # the slider's step is 16


def pick_effort(effort: str | None, max_tokens: float) -> tuple:
    """A preset fills in the slider and the switch, and makes Max tokens big enough for it."""
    if effort not in EFFORT_BUDGETS:
        return gr.skip(), gr.skip(), gr.skip()
    budget = EFFORT_BUDGETS[effort]
    need = needed_max_tokens(budget)
    raised = gr.Slider(value=need) if need > max_tokens else gr.skip()
    if budget is None:
        return gr.skip(), gr.Checkbox(value=True), raised
    return gr.Slider(value=budget, interactive=True), gr.Checkbox(value=False), raised


def matching_effort(budget: float, unlimited: bool) -> str | None:
    """The preset the controls show now, if any: the radio follows the slider."""
    if unlimited:
        return "Unlimited"
    return next((k for k, v in EFFORT_BUDGETS.items() if v == int(budget)), None)


def sync_effort(budget: float, unlimited: bool) -> dict:
    return gr.Radio(value=matching_effort(budget, unlimited))


def toggle_unlimited(unlimited: bool) -> dict:
    return gr.Slider(interactive=not unlimited)


def capped_warning(settings: Settings) -> str | None:
    budget, room = settings.think_budget, settings.max_tokens - SERVER_MARGIN
    if budget is None or budget <= room:
        return None
    return (f"Max tokens is {settings.max_tokens}, so the server will lower the think budget "
            f"of {budget} to about {max(room, 0)}. Raise Max tokens under Advanced to use it all.")


def warn_if_capped(settings: Settings) -> None:
    if message := capped_warning(settings):
        warn(message, "Budget capped by max tokens")
