"""Chat messages → prompt text, using the model's own chat template, plus the budget's suffix.

When a budget applies the prompt opens `<think>` itself (unless the template already does), so
thinking starts at output position 0 and the budget counts from the first generated token. Budget
0 appends the whole closing sequence (`<think></think><answer>` for GLM-4.1V) to the prompt: the
model answers at once and nothing has to be forced token by token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget import ThinkProfile
from budget.profile import FAMILIES
from serving.errors import APIError
from serving.protocol import ImagePart, Message, TextPart


@dataclass(frozen=True)
class Prompt:
    text: str
    prefilled_answer: bool  # we appended the closing sequence (budget 0)


def template_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """OpenAI messages → the `{"type": "text"|"image"|"video"}` parts HF chat templates render
    (GLM-4.1V's template emits its `<|begin_of_image|><|image|>...` placeholders for these)."""
    out = []
    for msg in messages:
        if msg.content is None or isinstance(msg.content, str):
            content: Any = msg.content or ""
        else:
            content = [
                {"type": "text", "text": p.text} if isinstance(p, TextPart)
                else {"type": "image"} if isinstance(p, ImagePart)
                else {"type": "video"}
                for p in msg.content
            ]
        out.append({"role": msg.role, "content": content})
    return out


def render_chat(tokenizer: Any, messages: list[Message]) -> str:
    try:
        text = tokenizer.apply_chat_template(template_messages(messages), tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja raises TemplateError (or anything the template calls)
        raise APIError(f"the model's chat template rejected these messages: {exc}", param="messages") from None
    if not isinstance(text, str):
        raise APIError("the model's chat template did not produce text", param="messages")
    return text


def add_budget_suffix(text: str, profile: ThinkProfile, budget: int | None, applies: bool) -> Prompt:
    """Open thinking (and for budget 0 close it) in the prompt text when a budget applies."""
    if not applies:
        return Prompt(text, prefilled_answer=False)
    spec = FAMILIES[profile.family]
    suffix = "" if text.rstrip().endswith(spec.think_open) else spec.think_open
    if budget == 0:
        suffix += "".join(spec.closing)
    return Prompt(text + suffix, prefilled_answer=budget == 0)
