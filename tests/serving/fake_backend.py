"""A fast stand-in for the vLLM backend, for HTTP-layer tests only (the real path has its own tests).

It tokenizes with the real tiny-model tokenizer and enforces budgets by driving `budget.ThinkState`
exactly as the engine's logits processor does, sampling other tokens from a seeded generator.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from budget import ThinkState, build_profile, params_from_args
from budget.params import BudgetParams
from serving.backend import RenderedPrompt, SamplingSpec, TokenDelta


class FakeBackend:
    model_type = "glm4v"

    def __init__(self, tokenizer: Any, model_path: str = "tiny", max_model_len: int = 512,
                 answer_len: int = 6, step_delay: float = 0.0):
        self.tokenizer = tokenizer
        self.model_path = model_path
        self.max_model_len = max_model_len
        self.answer_len = answer_len  # free tokens after thinking before EOS
        self.step_delay = step_delay
        self.profile = build_profile(tokenizer, model_type=self.model_type)
        self.running: set[str] = set()
        self.rendered: list[tuple[str, dict | None]] = []
        # Plain word pieces only: ids that decode to text and are none of the markers.
        specials = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
        self.words = [i for i in range(300, 900) if i not in specials]

    async def render(self, prompt_text: str, mm_data: dict[str, list] | None) -> RenderedPrompt:
        self.rendered.append((prompt_text, mm_data))
        ids = self.tokenizer.encode(prompt_text, add_special_tokens=False)
        return RenderedPrompt(ids, None)

    def _choice(self, spec: SamplingSpec, prompt_ids: list[int], index: int) -> list[int]:
        """One whole choice: think (model closes after 30 tokens unless forced), answer, EOS."""
        params = params_from_args(spec.extra_args) or BudgetParams()
        state = ThinkState(self.profile, params, prompt_ids)
        rng = random.Random((spec.seed or 0) * 1000 + index)
        out: list[int] = []
        answered = 0
        while len(out) < spec.max_tokens:
            tok = state.forced_token()
            if tok is None:
                if state.is_thinking and state.num_thinking_tokens >= 30:
                    tok = self.profile.think_close_id
                elif not state.is_thinking and answered >= self.answer_len:
                    tok = self.tokenizer.eos_token_id
                else:
                    tok = rng.choice(self.words)
                    answered += not state.is_thinking
            state.advance(tok)
            out.append(tok)
            if tok == self.tokenizer.eos_token_id:
                break
        return out

    async def generate(self, prompt: RenderedPrompt, spec: SamplingSpec, request_id: str) -> AsyncIterator[list[TokenDelta]]:
        choices = [self._choice(spec, prompt.prompt_token_ids, i) for i in range(spec.n)]
        self.running.add(request_id)
        try:
            for step in range(max(map(len, choices))):
                await asyncio.sleep(self.step_delay)
                batch = []
                for i, ids in enumerate(choices):
                    if step < len(ids):
                        last = step == len(ids) - 1
                        reason = ("stop" if ids[-1] == self.tokenizer.eos_token_id else "length") if last else None
                        batch.append(TokenDelta(i, [ids[step]], reason))
                yield batch
        finally:
            self.running.discard(request_id)  # finished, or aborted by cancellation

    async def abort(self, request_id: str) -> None:
        self.running.discard(request_id)

    def num_unfinished_requests(self) -> int:
        return len(self.running)

    async def check_health(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
