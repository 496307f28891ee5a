"""Fold the server's streamed chunks (docs/api.md) into one assistant turn.

Pure: chunks arrive as plain dicts (`chunk.to_dict()` in the openai SDK), so the folding is tested
without a server. The thinkcap extension fields ride on the chunk that carries `finish_reason`,
and the token usage on the final chunk with empty `choices`. The caller passes the clock reading
with each chunk, so the turn's timings are testable too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    stopped: bool = False  # the user pressed Stop: the turn ends where it was
    # Monotonic clock readings: request sent, first answer text, last chunk.
    started_at: float = field(default_factory=time.monotonic)
    answer_at: float | None = None
    last_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def answering(self) -> bool:
        """Thinking is over once answer text arrives or the turn ends."""
        return bool(self.answer) or self.finished or self.stopped

    @property
    def num_answer_tokens(self) -> int | None:
        if self.answer_tokens is not None:  # exact, from the server's token ids
            return self.answer_tokens
        if self.completion_tokens is None or self.num_thinking_tokens is None:
            return None
        # Older servers: an upper bound (it includes the closing tags and EOS).
        return self.completion_tokens - self.num_thinking_tokens

    @property
    def thinking_seconds(self) -> float | None:
        """From the request to the first answer text (or the end): what the thought cost."""
        end = self.answer_at or self.last_at
        return None if end is None else max(0.0, end - self.started_at)

    @property
    def seconds(self) -> float | None:
        return None if self.last_at is None else max(0.0, self.last_at - self.started_at)

    @property
    def tokens_per_second(self) -> float | None:
        tokens = [self.num_thinking_tokens, self.num_answer_tokens]
        if None in tokens or not self.seconds:
            return None
        return sum(tokens) / self.seconds

    def feed(self, chunk: Mapping[str, Any], now: float | None = None) -> None:
        """Apply one `chat.completion.chunk`; chunks for other choices than the first are ignored."""
        self.last_at = time.monotonic() if now is None else now
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
        if (content := delta.get("content")) and not self.answer:
            self.answer_at = self.last_at
        self.answer += content or ""
        if reason := choice.get("finish_reason"):
            self.finish_reason = reason
        if stats := choice.get("thinkcap"):
            self.num_thinking_tokens = stats.get("num_thinking_tokens")
            self.answer_tokens = stats.get("num_answer_tokens")
            self.answer_forced = bool(stats.get("answer_forced"))
            self.boxed_answer = stats.get("boxed_answer")


class Throttle:
    """At most one page update per `interval` seconds: every update re-renders the whole message
    in the browser, and a 3,000-token thought sent token by token froze the page for seconds."""

    def __init__(self, interval: float = 0.1, clock=time.monotonic):
        self.interval, self._clock, self._last = interval, clock, float("-inf")

    def ready(self) -> bool:
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
