"""The controls beside the chat: effort presets, think budget, max tokens, and their agreement.

The presets, the slider and the "unlimited" switch describe one setting, so each change brings
the others in step: a hand-typed budget deselects the preset it no longer matches, and a preset
that needs more room raises Max tokens (which would otherwise cap the budget silently). Every
control stays inside the served model's context length (`max_model_len` from /v1/models):
asking for more is a 400 on every request.
"""

from __future__ import annotations

import math

import gradio as gr

from ui.client import Settings

EFFORT_BUDGETS = {"Low": 256, "Medium": 1024, "High": 4096, "Unlimited": None}
MAX_BUDGET = 8192
MAX_TOKENS = 16384
ANSWER_ROOM = 1024  # tokens a preset leaves for the answer after a full thought
STEP = 16  # the Max tokens slider's step
# What the server keeps of max_tokens besides the thought: `</think><answer>` (2 tokens on
# GLM-4.1V) and `--answer-reserve` (16 by default; each reply says the server's own value).
CLOSING_TOKENS, DEFAULT_RESERVE = 2, 16
# `think_budget_action`: "default" is not sent (the server's --think-budget-action applies).
ACTIONS = [("Server default", "default"), ("Force the answer", "force"),
           ("Stop there, no answer (truncate)", "truncate")]
DEFAULT_ACTION = "default"
CUT_NOTE = ("Grace, wrap-up message and truncate apply to each chat reply and to each "
            "independent Compare column. In Compare's cut mode they shape the one shared thought "
            "(the largest budget's column); every smaller budget is an exact cut of that thought, "
            "answered at once: no grace, no message, always an answer.")
TOAST_SECONDS = 8  # toasts go away on their own: stale ones used to pile up


def warn(message: str, title: str) -> None:
    gr.Warning(message, title=title, duration=TOAST_SECONDS)


def token_limit(limit: int | None) -> int:
    """The most Max tokens may be: the context length when the server says it."""
    return MAX_TOKENS if limit is None else min(MAX_TOKENS, limit)


def budget_limit(limit: int | None) -> int:
    return min(MAX_BUDGET, token_limit(limit))


def effort_budgets(limit: int | None = None) -> dict[str, int | None]:
    """The presets, each lowered so that its thought and an answer fit in the context."""
    room = max(0, token_limit(limit) - ANSWER_ROOM)
    return {k: None if v is None else min(v, room) for k, v in EFFORT_BUDGETS.items()}


def effort_info(limit: int | None = None) -> str:
    return " · ".join(f"{k} = {v}" for k, v in effort_budgets(limit).items() if v is not None)


def needed_max_tokens(budget: int | None, limit: int | None = None) -> int:
    """Max tokens that hold a full thought at this budget plus room for an answer."""
    need = (MAX_BUDGET if budget is None else budget) + ANSWER_ROOM
    return min(token_limit(limit), STEP * math.ceil(need / STEP))


def pick_effort(effort: str | None, max_tokens: float, limit: int | None = None) -> tuple:
    """A preset fills in the slider and the switch, and raises Max tokens to hold it, never
    past the context (the preset's budget is lowered to fit instead)."""
    budgets = effort_budgets(limit)
    if effort not in budgets:
        return gr.skip(), gr.skip(), gr.skip()
    budget = budgets[effort]
    need = needed_max_tokens(budget, limit)
    fitted = gr.Slider(value=need) if need > max_tokens else gr.skip()
    if budget is None:
        return gr.skip(), gr.Checkbox(value=True), fitted
    return gr.Slider(value=budget, interactive=True), gr.Checkbox(value=False), fitted


def matching_effort(budget: float, unlimited: bool, limit: int | None = None) -> str | None:
    """The preset the controls show now, if any: the radio follows the slider."""
    if unlimited:
        return "Unlimited"
    return next((k for k, v in effort_budgets(limit).items() if v == int(budget)), None)


def toggle_unlimited(unlimited: bool) -> dict:
    return gr.Slider(interactive=not unlimited)


def server_margin(reserve: int | None = None) -> int:
    """What the server subtracts from max_tokens to get the most thinking it allows."""
    return CLOSING_TOKENS + (DEFAULT_RESERVE if reserve is None else reserve)


def capped_warning(settings: Settings, reserve: int | None = None) -> str | None:
    """The server's own rule (docs/api.md): budget ≤ max_tokens − closing − reserve."""
    budget, room = settings.think_budget, settings.max_tokens - server_margin(reserve)
    if budget is None or budget <= room:
        return None
    return (f"Max tokens is {settings.max_tokens}, so the server will lower the think budget "
            f"of {budget} to {max(room, 0)}. Raise Max tokens under Advanced to use it all.")


_CLAMPED: set[str] = set()  # elem_ids of the sliders whose typed values are clamped
_slider_preprocess = gr.Slider.preprocess


def _clamping_preprocess(self: gr.Slider, payload: float) -> float:
    if self.elem_id in _CLAMPED and payload is not None:
        payload = min(max(payload, self.minimum), self.maximum)
    return _slider_preprocess(self, payload)


# Patched on the class, keyed by elem_id: Gradio rebuilds a session's component from its
# constructor arguments on every update (so a patched instance is lost), and a subclass
# would need a frontend and a generated .pyi of its own.
gr.Slider.preprocess = _clamping_preprocess


def bounded(slider: gr.Slider) -> gr.Slider:
    """Clamp a typed value outside the slider's range instead of failing: Gradio's own check
    raised, so a typed 99999 printed a traceback in the terminal while the page silently used
    the bound. `out_of_range` tells the user; this keeps every other event from failing."""
    _CLAMPED.add(slider.elem_id)
    return slider


def out_of_range(value: float | None, low: float, high: float, name: str,
                 kind: type = gr.Slider) -> dict:
    """The update for a number typed outside [low, high]: the nearest bound, and a warning."""
    if value is None or low <= value <= high:
        return gr.skip()
    bound = high if value > high else low
    side = "most" if value > high else "least"
    warn(f"{name} {value:g} is out of range: the {side} this server allows is {bound:g}, "
         f"so {bound:g} is used.", f"{name} out of range")
    return kind(value=bound)
