"""Open thinking in the prompt: the model's chat template with `<think>` after the generation prompt.

Why: GLM-4.1V-Thinking always starts its reply with `<think>`. When the prompt ends at the assistant
tag, that token is one full decode step (the processor forces it at output 0, `open_thinking`)
before the first visible token, so time to first token pays for it. Ending the prompt with
`<think>` instead costs one prefill token; `budget.ThinkState` sees thinking already open in the
prompt and counts the budget from output 0, and the `glm41v` reasoning parser reads it the same way
(`adjust_initial_state_from_prompt`). `thinkcap serve` uses this template by default for GLM-4.1V
models; with the user's own `--chat-template` the processor forces `<think>` as before.

The change is checked by rendering, not by pattern: the extended template must render exactly the
original plus `<think>` with a generation prompt, and exactly the original without one.
"""

from __future__ import annotations

from typing import Any

OPEN_THINKING_SUFFIX = "{%- if add_generation_prompt -%}<think>{%- endif -%}"
_PROBES: tuple[list[dict[str, Any]], ...] = (
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}],
)


class TemplateError(ValueError):
    """The model's template cannot be extended with `<think>` (the caller keeps the original)."""


def model_chat_template(model: str, trust_remote_code: bool = False) -> str | None:
    """The template vLLM would pick for `model`: the processor's, else the tokenizer's."""
    from transformers import AutoProcessor, AutoTokenizer

    for loader in (AutoProcessor, AutoTokenizer):
        try:
            template = getattr(loader.from_pretrained(model, trust_remote_code=trust_remote_code), "chat_template", None)
        except Exception:  # noqa: BLE001 - a model without a processor falls back to its tokenizer
            continue
        if isinstance(template, str) and template:
            return template
    return None


def _render(template: str, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
    from transformers.utils.chat_template_utils import _compile_jinja_template

    return _compile_jinja_template(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


def with_open_thinking(template: str, think_open: str = "<think>") -> str:
    """`template` extended so a generation prompt ends with `think_open`; raises TemplateError when
    the result would not be exactly that (or the template already opens thinking itself)."""
    extended = template + OPEN_THINKING_SUFFIX.replace("<think>", think_open)
    for messages in _PROBES:
        try:
            before = _render(template, messages, True)
            after = _render(extended, messages, True)
            plain = _render(extended, messages, False) == _render(template, messages, False)
        except Exception as e:  # noqa: BLE001 - any template failure means: keep the original
            raise TemplateError(f"the chat template does not render a plain conversation: {e}") from e
        if before.rstrip().endswith(think_open):
            raise TemplateError("the chat template already opens thinking in the generation prompt")
        if after != before + think_open or not plain:
            raise TemplateError("appending <think> to the chat template does not end the generation prompt with it")
    return extended
