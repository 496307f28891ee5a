"""The demo's only link to the model: the server's OpenAI-compatible HTTP API, via the openai SDK.

Every failure becomes a `ServerError` whose message can be shown in the page as is: the server's
own OpenAI-style `error.message` when it answered, a plain sentence when it could not be reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai


class ServerError(Exception):
    """A request failed; `str(exc)` is meant for the user."""


@dataclass(frozen=True)
class Settings:
    """What the controls beside the chat ask for."""

    think_budget: int | None  # None: unlimited thinking
    max_tokens: int
    temperature: float


def build_request(model: str, messages: list[dict], settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, extensions in `extra_body` (docs/api.md)."""
    return {
        "model": model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},  # the last chunk then carries token usage
        # An explicit null means "unlimited"; leaving it out would apply the server's default.
        "extra_body": {"think_budget": settings.think_budget},
    }


def error_message(exc: openai.OpenAIError, api_base: str) -> str:
    if isinstance(exc, openai.APIConnectionError):
        return f"Cannot reach the model server at {api_base}. Is the server running?"
    if isinstance(exc, openai.APIStatusError):
        # The SDK already unwraps `{"error": {...}}` into `body`; other servers' bodies vary.
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") or body.get("detail") or exc.message
        return f"The server rejected the request ({exc.status_code}): {message}"
    return f"The request failed: {exc}"


class ChatClient:
    def __init__(self, api_base: str, api_key: str = "EMPTY", model: str | None = None,
                 timeout: float = 600.0):
        self.api_base = api_base
        self._model = model
        # No retries: a demo user wants to see "server down" now, not after backoff.
        self._client = openai.OpenAI(base_url=api_base, api_key=api_key, timeout=timeout,
                                     max_retries=0)

    @property
    def model(self) -> str:
        """The model named on the command line, else the first one the server lists."""
        if self._model is None:
            try:
                models = self._client.models.list().data
            except openai.OpenAIError as exc:
                raise ServerError(error_message(exc, self.api_base)) from None
            if not models:
                raise ServerError(f"The server at {self.api_base} lists no models.")
            self._model = models[0].id
        return self._model

    def stream(self, messages: list[dict], settings: Settings) -> Iterator[dict]:
        """Yield the response chunks as plain dicts, extension fields included."""
        request = build_request(self.model, messages, settings)
        try:
            with self._client.chat.completions.create(**request) as chunks:
                for chunk in chunks:
                    yield chunk.to_dict()
        except openai.OpenAIError as exc:
            raise ServerError(error_message(exc, self.api_base)) from None
        except httpx.HTTPError:  # the connection broke mid-stream: the SDK does not wrap this
            raise ServerError(f"Lost the connection to {self.api_base} mid-answer.") from None
