"""thinkcap's additions to vLLM's chat/completion responses, computed from token ids.

Per choice: the `thinkcap` object (`num_thinking_tokens`, `num_answer_tokens`, `answer_forced`,
`boxed_answer`, `forced_positions`, and the effective `think_budget` / `answer_reserve`), and
`reasoning_content` beside vLLM's `reasoning` (older clients read that name). Everything comes from
replaying `budget.ThinkState` over the output ids with the same params the engine's processor
resolved (`budget.resolve_params`), so it is exactly what the engine enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vllm.entrypoints.serve.utils.api_utils import get_max_tokens

from budget import BudgetParams, ThinkProfile, boxed_ids, replay, resolve_params, split_output
from serving.dialects import Prepared
from vllm_adapter.reasoning_parser import strip_answer_tags

_NO_BUDGET = BudgetParams()  # still tracks <think> spans when nothing is enforced


@dataclass
class Layer:
    """Per-server state of the budget layer (built once in the endpoint plugin's init_state)."""

    settings: Any  # ServerSettings
    profile: ThinkProfile
    tokenizer: Any
    max_model_len: int
    default_sampling_params: dict[str, Any] = field(default_factory=dict)
    answer_tags: tuple[str | None, str | None] = field(init=False)
    special_strings: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.answer_tags = tuple(  # type: ignore[assignment]
            None if i is None else self.tokenizer.convert_ids_to_tokens(i)
            for i in (self.profile.answer_open_id, self.profile.answer_close_id))
        # Special tokens' text (<|image|>, <|user|>, ...): vLLM's detokenizer keeps it whenever a tool
        # parser turns skip_special_tokens off (glm45 does); GLM markup never belongs in the text.
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        self.special_strings = tuple(t.content for t in added.values() if getattr(t, "special", False))

    def resolved_max_tokens(self, client_max: int | None, prompt_len: int) -> int:
        """vLLM's own rule for the engine's max_tokens, so the replay resolves what the engine did."""
        return get_max_tokens(self.max_model_len, client_max, prompt_len, self.default_sampling_params)

    def choice_info(self, prepared: Prepared, prompt_ids: Sequence[int], output_ids: Sequence[int]) -> dict[str, Any]:
        max_tokens = self.resolved_max_tokens(prepared.max_tokens, len(prompt_ids))
        params = resolve_params(self.profile, prepared.params, prompt_ids, max_tokens)
        state = replay(self.profile, params or _NO_BUDGET, prompt_ids, output_ids)
        seg = split_output(state, output_ids)
        box = boxed_ids(self.profile, seg.answer_ids)
        return {
            "num_thinking_tokens": seg.num_thinking_tokens,
            "num_answer_tokens": len(seg.answer_ids),
            "answer_forced": seg.answer_forced,
            "boxed_answer": None if box is None else self.tokenizer.decode(box).strip(),
            "forced_positions": list(state.forced_positions),
            "think_budget": params.think_budget if params else None,
            "answer_reserve": params.answer_reserve if params else None,
        }

    def strip_special(self, text: str) -> str:
        if "<" not in text and "[" not in text:
            return text
        for special in self.special_strings:
            text = text.replace(special, "")
        return text


class ChoiceTracker:
    """Accumulates one response's ids (streamed or not) and decorates its JSON objects in place."""

    def __init__(self, layer: Layer, prepared: Prepared):
        self.layer = layer
        self.prepared = prepared
        self.prompt_ids: list[int] = []
        self.ids: dict[int, list[int]] = {}

    def _take_prompt(self, holder: dict[str, Any]) -> None:
        ids = holder.get("prompt_token_ids") if self.prepared.client_wants_ids else holder.pop("prompt_token_ids", None)
        if ids:
            self.prompt_ids = list(ids)

    def response(self, obj: dict[str, Any]) -> None:
        """A whole (non-streamed) chat.completion or text_completion object."""
        self._take_prompt(obj)
        for choice in obj.get("choices") or []:
            self._take_prompt(choice)
            ids = choice.get("token_ids") if self.prepared.client_wants_ids else choice.pop("token_ids", None)
            self._clean(choice.get("message"))
            if self.prepared.ids_visible:
                choice["thinkcap"] = self.layer.choice_info(self.prepared, self.prompt_ids, ids or [])
                obj["thinkcap"] = self.request_info(choice["thinkcap"])

    def chunk(self, obj: dict[str, Any]) -> bool:
        """One streamed chunk; False when nothing is left to send (it only carried ids)."""
        self._take_prompt(obj)
        kept = []
        for choice in obj.get("choices") or []:
            self._take_prompt(choice)
            index = choice.get("index", 0)
            ids = choice.get("token_ids") if self.prepared.client_wants_ids else choice.pop("token_ids", None)
            self.ids.setdefault(index, []).extend(ids or [])
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("content"):  # after reasoning ends vLLM streams raw text: drop answer tags
                    delta["content"] = strip_answer_tags(delta["content"], *self.layer.answer_tags)
                self._clean(delta)
            if choice.get("finish_reason") is not None and self.prepared.ids_visible:
                choice["thinkcap"] = self.layer.choice_info(self.prepared, self.prompt_ids, self.ids[index])
                obj["thinkcap"] = self.request_info(choice["thinkcap"])
            if self._worth_sending(choice):
                kept.append(choice)
        had_choices = bool(obj.get("choices"))
        obj["choices"] = kept
        return bool(kept) or not had_choices  # usage-only chunks have no choices at all

    def request_info(self, choice_info: dict[str, Any]) -> dict[str, Any]:
        """Top level: the budget asked for and the one applied (after the answer reserve)."""
        asked = self.prepared.params.think_budget if self.prepared.params else None
        return {"think_budget": asked, "effective_think_budget": choice_info["think_budget"]}

    def _clean(self, message: dict[str, Any] | None) -> None:
        """Special-token text out of `content`/`reasoning` (unless the client asked to keep it with
        skip_special_tokens=false), and `reasoning_content` beside `reasoning`."""
        if not isinstance(message, dict):
            return
        if not self.prepared.keep_special_tokens:
            for key in ("content", "reasoning"):
                if isinstance(message.get(key), str):
                    message[key] = self.layer.strip_special(message[key])
        if message.get("reasoning") is not None:
            message["reasoning_content"] = message["reasoning"]

    def _worth_sending(self, choice: dict[str, Any]) -> bool:
        if self.prepared.client_wants_ids or choice.get("finish_reason") is not None or choice.get("logprobs"):
            return True
        if "text" in choice:  # completions
            return bool(choice["text"])
        delta = choice.get("delta") or {}
        return any(v not in (None, "", []) for k, v in delta.items() if k != "role") or "role" in delta
