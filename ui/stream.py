"""Fold the server's streamed chunks (docs/api.md) into one assistant turn.

Pure: chunks arrive as plain dicts (`chunk.to_dict()` in the openai SDK), so the folding is tested
without a server. The thinkcap extension fields ride on the chunk that carries `finish_reason`,
and the token usage on the final chunk with empty `choices`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Turn:
    thinking: str = ""
    answer: str = ""
    finish_reason: str | None = None
    # From `choices[0].thinkcap`: exact counts from token ids, not estimates from the text.
    num_thinking_tokens: int | None = None
    answer_tokens: int | None = None  # `num_answer_tokens`, when the server sends it
    answer_forced: bool = False
    boxed_answer: str | None = None
    # From the top-level `thinkcap`: what was asked for and what the server could apply.
    think_budget: int | None = None
    effective_think_budget: int | None = None
    completion_tokens: int | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def answering(self) -> bool:
        """Thinking is over once answer text arrives or the turn ends."""
        return bool(self.answer) or self.finished

    @property
    def num_answer_tokens(self) -> int | None:
        if self.answer_tokens is not None:  # exact, from the server's token ids
            return self.answer_tokens
        if self.completion_tokens is None or self.num_thinking_tokens is None:
            return None
        # Older servers: an upper bound (it includes the closing tags and EOS).
        return self.completion_tokens - self.num_thinking_tokens

    def feed(self, chunk: Mapping[str, Any]) -> None:
        """Apply one `chat.completion.chunk`; chunks for other choices than the first are ignored."""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._feed_choice(choice)
        if top := chunk.get("thinkcap"):
            self.think_budget = top.get("think_budget")
            self.effective_think_budget = top.get("effective_think_budget")
        if usage := chunk.get("usage"):
            self.completion_tokens = usage.get("completion_tokens")

    def _feed_choice(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta") or {}
        # `reasoning` is the newer vLLM name for the same text; servers send one or both.
        self.thinking += delta.get("reasoning_content") or delta.get("reasoning") or ""
        self.answer += delta.get("content") or ""
        if reason := choice.get("finish_reason"):
            self.finish_reason = reason
        if stats := choice.get("thinkcap"):
            self.num_thinking_tokens = stats.get("num_thinking_tokens")
            self.answer_tokens = stats.get("num_answer_tokens")
            self.answer_forced = bool(stats.get("answer_forced"))
            self.boxed_answer = stats.get("boxed_answer")
