"""thinkcap's additions to vLLM's responses, computed from token ids (`serving.tracker` applies them).

Per choice: the `thinkcap` object (`num_thinking_tokens`, `num_answer_tokens`, `answer_forced`,
`boxed_answer`, `forced_positions`, and the effective `think_budget` / `answer_reserve`), and
`reasoning_content` beside vLLM's `reasoning` (older clients read that name). Everything comes from
replaying `budget.ThinkState` over the output ids with the same params the engine's processor
resolved (`budget.resolve_params`), so it is exactly what the engine enforced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vllm.entrypoints.serve.utils.api_utils import get_max_tokens

from budget import BudgetParams, ThinkProfile, boxed_ids, replay, resolve_params, split_output
from serving.dialects import Prepared

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
    markup_prefixes: tuple[bytes, ...] = field(init=False)
    markup_re: re.Pattern[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.answer_tags = tuple(  # type: ignore[assignment]
            None if i is None else self.tokenizer.convert_ids_to_tokens(i)
            for i in (self.profile.answer_open_id, self.profile.answer_close_id))
        # Special tokens' text (<|image|>, <|user|>, ...): vLLM's detokenizer keeps it whenever a tool
        # parser turns skip_special_tokens off (glm45 does); GLM markup never belongs in the text.
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        self.special_strings = tuple(t.content for t in added.values() if getattr(t, "special", False))
        # An SSE chunk holding none of these needs no change of its text (see serving.tracker): one
        # C-speed scan, after a cheaper test for their first two bytes.
        markup = sorted({s.encode() for s in (*self.special_strings, *self.answer_tags) if s}, key=len, reverse=True)
        self.markup_prefixes = tuple({m[:2] for m in markup})
        self.markup_re = re.compile(b"|".join(re.escape(m) for m in markup) or b"(?!)")

    def resolved_max_tokens(self, client_max: int | None, prompt_len: int) -> int:
        """vLLM's own rule for the engine's max_tokens, so the replay resolves what the engine did."""
        return get_max_tokens(self.max_model_len, client_max, prompt_len, self.default_sampling_params)

    def choice_info(self, prepared: Prepared, prompt_ids: Sequence[int], output_ids: Sequence[int],
                    max_tokens: int | None = None) -> dict[str, Any]:
        """`max_tokens`: the engine's (from the captured sampling params); else vLLM's rule again."""
        if max_tokens is None:
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
            # how thinking ended: model | budget | boundary | grace_limit | eos | truncated (None: still open)
            "close_reason": state.close_reason,
            "think_budget": params.think_budget if params else None,
            "answer_reserve": params.answer_reserve if params else None,
        }

    def strip_special(self, text: str) -> str:
        if "<" not in text and "[" not in text:
            return text
        for special in self.special_strings:
            text = text.replace(special, "")
        return text
