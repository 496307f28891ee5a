"""Request models of `POST /v1/chat/completions` (OpenAI chat schema + thinkcap extensions).

Validation happens here, before any media is fetched or the engine sees anything; a failure
becomes an OpenAI-style 400 (see `serving/errors.py`). Unknown OpenAI fields are accepted and
ignored so stock clients keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from budget import parse_think_budget
from budget.params import THINK_BUDGET_ALIASES, THINK_BUDGET_KEY

NonNegInt = Annotated[StrictInt, Field(ge=0)]
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]  # torch generators take no more


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class MediaURL(BaseModel):
    url: str = Field(min_length=1)
    detail: str | None = None  # OpenAI's image detail hint; the model's processor decides sizes


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: MediaURL


class VideoPart(BaseModel):
    type: Literal["video_url"]
    video_url: MediaURL


ContentPart = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    @model_validator(mode="after")
    def _media_only_from_user(self) -> Message:
        if self.role != "user" and isinstance(self.content, list):
            if any(not isinstance(p, TextPart) for p in self.content):
                raise ValueError(f"only user messages may carry images or videos (got one in a {self.role} message)")
        return self


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: Annotated[StrictInt, Field(ge=1)] = 1
    stop: str | list[str] | None = Field(None, validate_default=True)  # always a list once validated
    seed: Int64 | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # --- thinkcap extensions -------------------------------------------------------------------
    # Typed Any on purpose: budget.parse_think_budget owns the rule (no bools, no floats, -1 = None).
    think_budget: Any = None
    thinking_token_budget: Any = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    min_think_tokens: NonNegInt | None = None
    return_token_ids: bool = False  # vLLM's extension: prompt/output ids in the response

    @field_validator("think_budget", "thinking_token_budget")
    @classmethod
    def _budget(cls, value: Any, info: Any) -> int | None:
        return parse_think_budget(value, info.field_name)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        return stops

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        given = [k for k in (THINK_BUDGET_KEY, *THINK_BUDGET_ALIASES) if k in self.model_fields_set]
        if len(given) > 1 and len({getattr(self, k) for k in given}) > 1:
            raise ValueError(f"conflicting budget values in {given}; send only {THINK_BUDGET_KEY}")
        if self.max_tokens is not None and self.max_completion_tokens is not None \
                and self.max_tokens != self.max_completion_tokens:
            raise ValueError("max_tokens and max_completion_tokens disagree; send one of them")
        return self

    # --- derived values ----------------------------------------------------------------------
    @property
    def budget_given(self) -> bool:
        """True when the client sent a budget field (even null, which means 'unlimited')."""
        return any(k in self.model_fields_set for k in (THINK_BUDGET_KEY, *THINK_BUDGET_ALIASES))

    @property
    def requested_budget(self) -> int | None:
        if THINK_BUDGET_KEY in self.model_fields_set:
            return self.think_budget
        return self.thinking_token_budget

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
