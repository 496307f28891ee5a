"""What the HTTP layer needs from an engine, as plain data: the real one is `serving.engine.VLLMBackend`
(vLLM AsyncLLM); tests may plug in a fake for fast HTTP-layer checks. Keeping vLLM types out of
this interface lets the routers and their unit tests run without importing vLLM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingSpec:
    max_tokens: int
    n: int = 1
    temperature: float | None = None  # None: the model's generation_config default
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    extra_args: dict[str, Any] | None = None  # budget keys for the logits processor


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt after the chat template and multimodal processing: its final token ids (image
    placeholders expanded) and whatever the engine needs to run it."""

    prompt_token_ids: list[int]
    engine_input: Any = None


@dataclass(frozen=True)
class TokenDelta:
    """New output ids of one choice since the last delta."""

    index: int
    token_ids: list[int]
    finish_reason: str | None = None  # "stop" | "length" | "abort" once finished
    stop_reason: int | str | None = None  # the stop string / id that ended it, if any


class Backend(Protocol):
    model_path: str
    max_model_len: int
    tokenizer: Any  # a Hugging Face tokenizer: apply_chat_template, decode, get_vocab
    model_type: str | None

    async def render(self, prompt_text: str, mm_data: dict[str, list] | None) -> RenderedPrompt:
        """Tokenize and run multimodal processing; APIError(400) for bad media or prompts."""
        ...

    def generate(self, prompt: RenderedPrompt, spec: SamplingSpec, request_id: str) -> AsyncIterator[list[TokenDelta]]:
        """Yield the deltas of each engine step until every choice has finished."""
        ...

    async def abort(self, request_id: str) -> None: ...

    def num_unfinished_requests(self) -> int: ...

    async def check_health(self) -> None: ...

    async def shutdown(self) -> None: ...
