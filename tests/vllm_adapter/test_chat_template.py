"""The open-thinking chat template: checked by rendering, refused when it would not be exact."""

from __future__ import annotations

import pytest

from serving.cli import open_thinking_template
from vllm_adapter.chat_template import TemplateError, model_chat_template, with_open_thinking

USER = [{"role": "user", "content": "What is 2+2?"}]


def test_tiny_glm_template_ends_the_generation_prompt_with_think(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    original = model_chat_template(str(tiny_model_dir))
    extended = open_thinking_template(str(tiny_model_dir), trust_remote_code=False)
    assert extended == with_open_thinking(original)
    with_prompt = tok.apply_chat_template(USER, chat_template=extended, add_generation_prompt=True, tokenize=False)
    assert with_prompt == tok.apply_chat_template(USER, chat_template=original, add_generation_prompt=True,
                                                  tokenize=False) + "<think>"
    ids = tok(with_prompt, add_special_tokens=False).input_ids
    assert ids[-1] == tok.convert_tokens_to_ids("<think>")  # one token: the parser and ThinkState see it
    # A continued or history-only render is untouched.
    assert tok.apply_chat_template(USER, chat_template=extended, add_generation_prompt=False, tokenize=False) == \
        tok.apply_chat_template(USER, chat_template=original, add_generation_prompt=False, tokenize=False)


@pytest.mark.parametrize("template, reason", [
    ("{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}A:<think>{% endif %}",
     "already opens thinking"),
    # Trailing spaces in the source would be trimmed by the appended tag: not exactly original + <think>.
    ("{{ messages[0].content }}{% if add_generation_prompt %}A: {% endif %}  ", "does not end"),
    ("{{ messages[0]['content'] | no_such_filter }}", "does not render"),
])
def test_templates_that_cannot_be_extended_exactly_are_refused(template, reason):
    with pytest.raises(TemplateError, match=reason):
        with_open_thinking(template)
