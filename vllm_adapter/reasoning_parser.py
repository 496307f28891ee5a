"""GLM-4.1V reasoning parser for vLLM: `<think>reasoning</think><answer>answer</answer>`.

Registered as `glm41v` (`--reasoning-parser glm41v`, for plain `vllm serve` too once thinkcap is
installed: `vllm_adapter.plugin` registers it in every vLLM process). vLLM's glm45 parser leaves
the answer tags in the content and ends reasoning at `</think>`, one token too early for a forced
`</think><answer>`: a grammar (structured outputs, required tool calls) would then mask the forced
`<answer>`. Here reasoning ends only after the model's whole closing sequence, so grammars and tool
parsers see the answer alone; answer tags are stripped, box markers kept.

Token rules come from `budget.ThinkProfile` (the same ids the logits processor forces); text is
split at the tag strings, which are single tokens in the GLM vocabularies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vllm.entrypoints.generate.base.protocol import DeltaMessage
from vllm.reasoning import ReasoningParser, ReasoningParserManager

from budget import BudgetParams, ThinkProfile, ThinkState, build_profile, hidden_ids
from budget.params import PROMPT_OPENED_KEY

if TYPE_CHECKING:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest

PARSER_NAME = "glm41v"


def strip_answer_tags(text: str, open_tag: str | None, close_tag: str | None) -> str:
    for tag in (open_tag, close_tag):
        if tag:
            text = text.replace(tag, "")
    return text


# vLLM builds a reasoning parser per request (twice for a chat request), and a profile reads the
# whole vocabulary (boundary ids): 8 ms a build on the tiny model's 1024 tokens, about a second on
# GLM-4.1V's 151k. So one profile per tokenizer object; the entry holds the tokenizer, so its id
# cannot be reused by another one while the entry exists.
_PROFILES: dict[tuple[int, str | None], tuple[Any, ThinkProfile]] = {}


def parser_profile(tokenizer: Any, model_type: str | None) -> ThinkProfile:
    key = (id(tokenizer), model_type)
    hit = _PROFILES.get(key)
    if hit is None or hit[0] is not tokenizer:
        hit = _PROFILES[key] = (tokenizer, build_profile(tokenizer, model_type=model_type))
    return hit[1]


@ReasoningParserManager.register_module(PARSER_NAME)
class Glm41vReasoningParser(ReasoningParser):
    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any):
        super().__init__(tokenizer, *args, **kwargs)
        model_config = kwargs.get("model_config")
        model_type = getattr(getattr(model_config, "hf_config", None), "model_type", None)
        self.profile = parser_profile(tokenizer, model_type)
        spec_tags = {i: tokenizer.convert_ids_to_tokens(i) for i in (self.profile.think_open_id,
                                                                      self.profile.think_close_id)}
        self.open_tag = spec_tags[self.profile.think_open_id]
        self.close_tag = spec_tags[self.profile.think_close_id]
        self.answer_open = self._tag(self.profile.answer_open_id)
        self.answer_close = self._tag(self.profile.answer_close_id)
        self._rest_of_closing = self.profile.closing_ids[1:]  # e.g. (<answer>,) after </think>
        self._hidden = hidden_ids(self.profile)
        self._side = "before"  # streaming: where the text is ("before" thinking, "reasoning", "answer")
        self._prompt_opened_hint: bool | None = None  # from the request (thinkcap serve), else guessed

    def _tag(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.model_tokenizer.convert_ids_to_tokens(token_id)

    @property
    def reasoning_start_str(self) -> str:
        return self.open_tag

    @property
    def reasoning_end_str(self) -> str:
        return self.close_tag

    # ---- token-level rules ------------------------------------------------------------------
    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        """True once the last `</think>` is followed by the rest of the closing sequence (or by
        anything else: the model left the format). False while thinking or mid-closing."""
        p = self.profile
        for i in range(len(input_ids) - 1, -1, -1):
            tok = input_ids[i]
            if tok == p.think_open_id:
                return False
            if tok == p.think_close_id:
                tail = tuple(input_ids[i + 1 : i + 1 + len(self._rest_of_closing)])
                return not (len(tail) < len(self._rest_of_closing) and tail == self._rest_of_closing[: len(tail)])
        return False

    def adjust_request(self, request: Any) -> Any:
        # vLLM's non-streaming paths give this parser no prompt ids; `thinkcap serve` says in the
        # request whether its chat template ended the prompt with `<think>`.
        xargs = getattr(request, "vllm_xargs", None) or {}
        if PROMPT_OPENED_KEY in xargs:
            self._prompt_opened_hint = bool(xargs[PROMPT_OPENED_KEY])
        return request

    def _prompt_opened(self, token_ids: Sequence[int]) -> bool:
        """Whether the prompt opened thinking: as the request says, else guessed from the output —
        it closes thinking without having opened it first (a stray `<think>` a model writes later
        inside its thought or answer is just text)."""
        if self._prompt_opened_hint is not None:
            return self._prompt_opened_hint
        p = self.profile
        return bool(token_ids) and token_ids[0] != p.think_open_id and p.think_close_id in token_ids

    def _replay(self, token_ids: Sequence[int]) -> ThinkState:
        p = self.profile
        state = ThinkState(p, BudgetParams(), (p.think_open_id,) if self._prompt_opened(token_ids) else ())
        state.advance_many(token_ids)
        return state

    def count_reasoning_tokens(self, token_ids: Sequence[int]) -> int:
        return self._replay(token_ids).num_thinking_tokens

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        state = self._replay(input_ids)
        if state.think_start is None:
            return list(input_ids)
        if state.answer_start is None:
            return []
        return [t for t in input_ids[state.answer_start :] if t not in self._hidden]

    # ---- text -------------------------------------------------------------------------------
    def _answer_text(self, text: str) -> str:
        return strip_answer_tags(text, self.answer_open, self.answer_close)

    def extract_reasoning(
        self, model_output: str, request: ChatCompletionRequest | ResponsesRequest
    ) -> tuple[str | None, str | None]:
        if request is not None:
            self.adjust_request(request)  # the hint, even where vLLM skipped adjust_request
        if self._prompt_opened_hint is False or (self._prompt_opened_hint is None and (
                model_output.lstrip().startswith(self.open_tag) or self.close_tag not in model_output)):
            head, opened, rest = model_output.partition(self.open_tag)  # the model opens thinking, if at all
            if not opened:  # never thought (or, unknowable without the prompt, cut before any close)
                return None, self._answer_text(model_output) or None
        else:
            head, rest = "", model_output  # the prompt opened thinking (the request says so, or `_prompt_opened`'s rule)
        reasoning, closed, answer = rest.partition(self.close_tag)
        # Text before the model's own `<think>` is content, as the streaming path sends it
        # (a `continue_final_message` continuation that opens a thought midway keeps its start).
        return reasoning, self._answer_text(head + answer) or None

    def extract_reasoning_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
    ) -> DeltaMessage | None:
        if not previous_token_ids and self._side == "before" and self.close_tag in delta_text \
                and self.open_tag not in delta_text:
            self._side = "reasoning"  # the prompt opened thinking and the hook was not called
        parts: dict[str, list[str]] = {"reasoning": [], "answer": []}
        text = delta_text
        while text:
            if self._side == "reasoning":
                head, tag, text = text.partition(self.close_tag)
                parts["reasoning"].append(head)
                self._side = "answer" if tag else self._side
            elif self._side == "before":  # text before `<think>` is content: a model that does not think
                head, tag, text = text.partition(self.open_tag)
                parts["answer"].append(head)
                self._side = "reasoning" if tag else self._side
            else:
                parts["answer"].append(text)
                text = ""
        reasoning = "".join(parts["reasoning"])
        content = self._answer_text("".join(parts["answer"]))
        if not reasoning and not content:
            return None
        return DeltaMessage(reasoning=reasoning or None, content=content or None)

    def adjust_initial_state_from_prompt(self, prompt_token_ids: Sequence[int]) -> None:
        p = self.profile
        for tok in reversed(prompt_token_ids):
            if tok == p.think_open_id:
                self._side = "reasoning"
                return
            if tok == p.think_close_id:
                break
        self._side = "before"
