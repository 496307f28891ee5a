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

from ui.session import StopSignal


class ServerError(Exception):
    """A request failed; `str(exc)` is meant for the user."""


@dataclass(frozen=True)
class Settings:
    """What the controls beside the chat ask for."""

    think_budget: int | None  # None: unlimited thinking
    max_tokens: int
    temperature: float
    system_prompt: str = ""
    # The server's budget controls (docs/api.md); None / "" leave the server's own default.
    grace: int | None = None  # `think_budget_grace`
    message: str = ""  # `think_budget_message`, sent as typed (a leading space matters)
    action: str | None = None  # `think_budget_action`: "force" or "truncate"

    def __post_init__(self) -> None:
        if self.think_budget is not None and self.think_budget < 0:
            raise ValueError(f"think_budget must be >= 0 or None, got {self.think_budget}")
        if self.grace is not None and self.grace < 0:
            raise ValueError(f"grace must be >= 0 or None, got {self.grace}")
        if self.action not in (None, "force", "truncate"):
            raise ValueError(f"action must be force, truncate or None, got {self.action!r}")

    def budget_fields(self) -> dict[str, Any]:
        """The budget controls that were set, as request fields; nothing for the unset ones."""
        fields: dict[str, Any] = {}
        if self.grace is not None:
            fields["think_budget_grace"] = self.grace
        if self.message.strip():
            fields["think_budget_message"] = self.message
        if self.action is not None:
            fields["think_budget_action"] = self.action
        return fields
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


def build_request(model: str, messages: list[dict], settings: Settings,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create`, extensions in `extra_body` (docs/api.md).

    `return_token_ids`: the thought's token ids, so the meter counts tokens (not chunks) and
    Compare can cut the thought at an exact token count. `extra` adds vLLM fields
    (`continue_final_message`, ...)."""
    return {
        "model": model,
        "messages": _with_system(messages, settings.system_prompt),
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},  # the last chunk then carries token usage
        # An explicit null means "unlimited"; leaving it out would apply the server's default.
        "extra_body": {"think_budget": settings.think_budget, "return_token_ids": True,
                       **settings.budget_fields(), **(extra or {})},
    }


def _with_system(messages: list[dict], prompt: str) -> list[dict]:
    return [{"role": "system", "content": prompt.strip()}, *messages] if prompt.strip() else messages


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
        self.api_base, self.api_key = api_base, api_key
        self._model = model
        # The served model's context length (`max_model_len` in /v1/models): no control may ask
        # for more, or every request is a 400. None until known (other servers may not say).
        self.max_model_len: int | None = None
        # The server's answer reserve, as its last reply said: the cap warning uses the same
        # numbers the reply will show.
        self.answer_reserve: int | None = None
        # No retries: a demo user wants to see "server down" now, not after backoff.
        self._client = openai.OpenAI(base_url=api_base, api_key=api_key, timeout=timeout,
                                     max_retries=0)

    @property
    def model(self) -> str:
        """The model named on the command line, else the first one the server lists."""
        if self._model is None:
            self._model = self.check()
        return self._model

    def check(self) -> str:
        """Ask the server now (never from a cache) which model it serves; ServerError if none."""
        try:
            models = self._client.models.list().data
        except openai.OpenAIError as exc:
            raise ServerError(error_message(exc, self.api_base)) from None
        if not models:
            raise ServerError(f"The server at {self.api_base} lists no models.")
        ids = [m.id for m in models]
        if self._model is not None and self._model not in ids:
            raise ServerError(f"The server at {self.api_base} does not serve {self._model}.")
        chosen = self._model or ids[0]
        card = next(m for m in models if m.id == chosen)
        limit = (card.model_extra or {}).get("max_model_len")
        self.max_model_len = limit if isinstance(limit, int) and limit > 0 else None
        return chosen

    def _learn(self, chunk: dict) -> None:
        for choice in chunk.get("choices") or ():
            reserve = (choice.get("thinkcap") or {}).get("answer_reserve")
            if isinstance(reserve, int):
                self.answer_reserve = reserve

    def stream(self, messages: list[dict], settings: Settings, stop: StopSignal | None = None,
               extra: dict[str, Any] | None = None) -> Iterator[dict]:
        """Yield the response chunks as plain dicts, extension fields included.

        `stop.stop()` from another thread closes the HTTP stream; the iteration then just ends.
        """
        request = build_request(self.model, messages, settings, extra)
        received = False
        try:
            with self._client.chat.completions.create(**request) as chunks:
                if stop is not None:
                    stop.attach(chunks.close)
                try:
                    for chunk in chunks:
                        received = True
                        data = chunk.to_dict()
                        self._learn(data)
                        yield data
                finally:
                    if stop is not None:
                        stop.detach(chunks.close)
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            if stop is not None and stop.stopped:
                return  # we closed the stream ourselves
            lost = isinstance(exc, (openai.APIConnectionError, httpx.HTTPError))
            if received and lost:
                # The SDK reports a stream cut mid-body as a connection error, like a server
                # that never answered; after the first chunk it can only be a lost connection.
                raise ServerError(f"Lost the connection to {self.api_base} mid-answer.") from None
            if isinstance(exc, openai.OpenAIError):
                raise ServerError(error_message(exc, self.api_base)) from None
            raise ServerError(f"Lost the connection to {self.api_base} mid-answer.") from None
