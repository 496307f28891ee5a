"""Bounds on one request and on how many run at once, checked by the budget middleware before a
body reaches the media gate or vLLM.

Per request (400/413 naming the field): body bytes (counted while reading, so a huge body is cut
off early), JSON nesting depth, number of messages/input items, content parts per message, and the
length of each stop string. vLLM already refuses the rest, and thinkcap leaves those to it (tested
in tests/serving/test_security.py): more than `VLLM_MAX_STOP_STRINGS` (4) stop strings, and a
`max_tokens` above the context left by the prompt.

Back-pressure: at most `max_in_flight_requests` generation requests per API-server process, from
the moment the body is read until the response (stream included) ends. vLLM's engine queues
whatever its batch cannot hold without bound; this cap is what keeps that queue bounded: request
number cap+1 gets 429 with `Retry-After` instead of a place in an ever-longer line.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.errors import APIError


class RequestLimits(BaseSettings):
    """Per-request shape limits and the in-flight cap (flags in `serving.cli`, or THINKCAP_* env)."""

    model_config = SettingsConfigDict(env_prefix="THINKCAP_", extra="ignore")

    # Data URLs travel in the body: the default leaves room for a 64 MiB item in base64 and more.
    max_body_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(64, ge=4)
    max_messages: int = Field(1024, ge=1)
    max_content_parts: int = Field(256, ge=1)
    max_stop_chars: int = Field(512, ge=1)
    max_in_flight_requests: int = Field(1024, ge=1)
    retry_after_s: int = Field(1, ge=0)


class BodyTooLarge(APIError):
    def __init__(self, limit: int):
        super().__init__(f"request body is larger than this server's limit of {limit} bytes "
                         "(--max-request-body-bytes)", status=413, param="body")


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole body, refused as soon as it passes `limit` bytes (nothing more is buffered)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def json_depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: a deep value cannot exhaust the stack)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def check_request(body: dict[str, Any], limits: RequestLimits) -> None:
    """Refuse a body whose shape is over a limit; the error names the field."""
    depth = json_depth(body)
    if depth > limits.max_json_depth:
        raise APIError(f"request JSON is nested {depth} levels deep; the limit is {limits.max_json_depth}", param="body")
    for key in ("messages", "input"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        if len(items) > limits.max_messages:
            raise APIError(f"{len(items)} {key}; this server allows at most {limits.max_messages} "
                           "(--max-request-messages)", param=key)
        for i, item in enumerate(items):
            parts = item.get("content") if isinstance(item, dict) else None
            if isinstance(parts, list) and len(parts) > limits.max_content_parts:
                raise APIError(f"{len(parts)} content parts in one message; this server allows at most "
                               f"{limits.max_content_parts} (--max-content-parts)", param=f"{key}.{i}.content")
    for key in ("stop", "stop_sequences"):
        stops = body.get(key)
        for i, stop in enumerate([stops] if isinstance(stops, str) else stops if isinstance(stops, list) else []):
            if isinstance(stop, str) and len(stop) > limits.max_stop_chars:
                raise APIError(f"stop string {i} has {len(stop)} characters; the limit is {limits.max_stop_chars} "
                               "(--max-stop-chars)", param=key)


class InFlight:
    """Counts generation requests in one API-server process; `enter` refuses past the cap."""

    def __init__(self) -> None:
        self.count = 0
        self.refused = 0

    def enter(self, limits: RequestLimits) -> None:
        if self.count >= limits.max_in_flight_requests:
            self.refused += 1
            raise APIError(f"server busy: {self.count} requests in flight, the limit is "
                           f"{limits.max_in_flight_requests}; retry after {limits.retry_after_s} s", status=429)
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
