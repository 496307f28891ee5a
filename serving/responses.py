"""Response models: OpenAI `ChatCompletion` / `ChatCompletionChunk` plus the `thinkcap` objects
described in docs/api.md. Optional extension fields are left out of the JSON when unset."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field


def _omit() -> object:
    """An optional extension field: left out of the JSON while None, so stock clients see OpenAI's shape."""
    return Field(None, exclude_if=lambda v: v is None)


class ChoiceThinkcap(BaseModel):
    """Per-choice budget facts, computed from token ids (never from text)."""

    num_thinking_tokens: int
    # Answer tokens the model wrote: no closing sequence, answer tags or EOS (budget.split_output).
    num_answer_tokens: int = 0
    answer_forced: bool
    boxed_answer: str | None = None
    # Output positions where the server forced a token (the closing sequence); from budget.replay.
    forced_positions: list[int] = Field(default_factory=list)


class RequestThinkcap(BaseModel):
    think_budget: int | None  # what the client asked for (after defaults and reasoning_effort)
    effective_think_budget: int | None  # what was applied after the answer reserve


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None
    reasoning: str | None = None  # same text; the field name newer OpenAI-style clients read


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    thinkcap: ChoiceThinkcap
    token_ids: list[int] | None = _omit()  # only with return_token_ids


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    thinkcap: RequestThinkcap
    prompt_token_ids: list[int] | None = _omit()  # only with return_token_ids


class Delta(BaseModel):
    role: Literal["assistant"] | None = _omit()
    content: str | None = _omit()
    reasoning_content: str | None = _omit()
    reasoning: str | None = _omit()


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    thinkcap: ChoiceThinkcap | None = _omit()  # on the chunk that finishes the choice
    token_ids: list[int] | None = _omit()  # the ids behind this delta, with return_token_ids


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = _omit()
    thinkcap: RequestThinkcap | None = _omit()
    prompt_token_ids: list[int] | None = _omit()


def make_usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning_tokens),
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "thinkcap"
    root: str | None = None
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
