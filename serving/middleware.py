"""The budget layer as one pure-ASGI middleware inside vLLM's server.

It sits inside vLLM's own middleware (CORS, `--api-key` auth, request ids): vLLM adds those after
the endpoint plugin installs this one, and Starlette runs the last added outermost. So a request
is authenticated before thinkcap reads its body. For the generation endpoints it:

1. reads the JSON body, maps the dialect's budget fields into `vllm_xargs` (`serving.dialects`)
   and passes media through the gate (`serving.media`); errors become OpenAI-style JSON;
2. hands the rewritten body to vLLM's route (vLLM parses, validates and serves it);
3. for chat and completions, adds the `thinkcap` object and `reasoning_content` to the JSON or to
   each SSE event on the way out (`serving.augment`).

Anything that is not a JSON object goes to vLLM untouched, which answers with its own error.
"""

from __future__ import annotations

import json
from typing import Any

import orjson  # ~7x faster than json on SSE chunks: this runs once per streamed chunk

from serving.augment import ChoiceTracker, Layer
from serving.dialects import DIALECTS, Prepared
from serving.errors import APIError
from serving.limits import InFlight, check_request, read_body
from serving.media import gate_media

Scope = dict[str, Any]


async def _send_error(send: Any, error: APIError, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error.body()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


class BudgetMiddleware:
    def __init__(self, app: Any):
        self.app = app
        self.in_flight = InFlight()  # one per API-server process (each builds its own app)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        prepare = DIALECTS.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        layer: Layer | None = getattr(scope["app"].state, "thinkcap", None) if prepare else None
        if prepare is None or layer is None:
            return await self.app(scope, receive, send)
        limits = layer.settings.limits
        try:
            self.in_flight.enter(limits)
        except APIError as error:
            return await _send_error(send, error, [(b"retry-after", str(limits.retry_after_s).encode())])
        try:
            await self._handle(scope, receive, send, prepare, layer)
        finally:
            self.in_flight.leave()

    async def _handle(self, scope: Scope, receive: Any, send: Any, prepare: Any, layer: Layer) -> None:
        try:
            raw = await read_body(receive, layer.settings.limits.max_body_bytes)
        except ConnectionError:
            return
        except APIError as error:
            return await _send_error(send, error, [(b"connection", b"close")])  # the rest stays unread
        try:
            body = json.loads(raw)
        except RecursionError:  # deeper than the interpreter's stack: certainly over the depth limit
            return await _send_error(send, APIError("request JSON is nested too deeply", param="body"))
        except ValueError:
            body = None
        if not isinstance(body, dict):  # vLLM's own 400 for whatever this is
            return await self.app(scope, _replay(raw, receive), send)
        try:
            check_request(body, layer.settings.limits)
            prepared = prepare(body, layer.settings)
            await gate_media(prepared.media, layer.settings.media)
        except APIError as error:
            return await _send_error(send, error)
        raw = orjson.dumps(body)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(raw)).encode())]}
        if prepared.kind in ("chat", "completion"):
            send = _Rewriter(send, ChoiceTracker(layer, prepared), prepared)
        await self.app(scope, _replay(raw, receive), send)


def _replay(body: bytes, receive: Any) -> Any:
    """The new body once, then the client's own channel (so vLLM still sees a disconnect)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _Rewriter:
    """Wraps `send`: decorates a 200 JSON body as a whole, or an SSE stream event by event."""

    def __init__(self, send: Any, tracker: ChoiceTracker, prepared: Prepared):
        self.send = send
        self.tracker = tracker
        self.mode = "pass"
        self.start: dict[str, Any] | None = None
        self.buffer = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            ctype = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] == 200 and b"text/event-stream" in ctype:
                self.mode = "sse"
            elif message["status"] == 200 and b"application/json" in ctype:
                self.mode, self.start = "json", message  # held until the body is complete
                return
            return await self.send(message)
        if message["type"] != "http.response.body" or self.mode == "pass":
            return await self.send(message)
        self.buffer += message.get("body", b"")
        more = message.get("more_body", False)
        if self.mode == "json":
            if not more:
                await self._send_json()
            return
        events, _, self.buffer = self.buffer.rpartition(b"\n\n")
        out = b"".join(self._event(e) for e in events.split(b"\n\n")) if events else b""
        if not more and self.buffer:
            out += self._event(self.buffer)
            self.buffer = b""
        if out or not more:
            await self.send({"type": "http.response.body", "body": out, "more_body": more})

    async def _send_json(self) -> None:
        body = self.buffer
        try:
            obj = orjson.loads(body)
            self.tracker.response(obj)
            body = orjson.dumps(obj)
        except orjson.JSONDecodeError:
            pass
        assert self.start is not None
        headers = [(k, v) for k, v in self.start.get("headers", []) if k != b"content-length"]
        await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})

    def _event(self, event: bytes) -> bytes:
        text = event.strip(b"\n")
        if not text.startswith(b"data: ") or text == b"data: [DONE]":
            return text + b"\n\n" if text else b""
        try:
            obj = orjson.loads(text[6:])
        except orjson.JSONDecodeError:
            return text + b"\n\n"
        if not isinstance(obj, dict) or not self.tracker.chunk(obj):
            return b""
        return b"data: " + orjson.dumps(obj) + b"\n\n"
