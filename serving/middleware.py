"""The budget layer as one pure-ASGI middleware inside vLLM's server.

It sits inside vLLM's own middleware (CORS, `--api-key` auth, request ids): vLLM adds those after
the endpoint plugin installs this one, and Starlette runs the last added outermost. So a request
is authenticated before thinkcap reads its body. For every request with a body, on any route and
under any mount prefix (see `BudgetMiddleware`), it:

1. reads the JSON body, checks the request limits and passes every media part through the gate
   (`serving.media_scan`, `serving.media`); on the generation routes it also maps the dialect's
   budget fields into `vllm_xargs` (`serving.dialects`); errors become OpenAI-style JSON;
2. hands the rewritten body to vLLM's route (vLLM parses, validates and serves it);
3. on the four dialects, adds the `thinkcap` object, the one reasoning count and (chat)
   `reasoning_content` to the JSON or to the SSE events that need them (`serving.tracker`), from
   the token ids the engine produced (`serving.capture`).

The body is parsed strictly (`serving.strict`): not UTF-8, not JSON, NaN/Infinity, a boolean
where vLLM declares a number, an unknown chat role → 400 naming the field. A JSON value that is
not an object, an empty body or a form upload goes to vLLM untouched (its own errors).
"""

from __future__ import annotations

import json
from typing import Any

import orjson  # ~7x faster than json on SSE chunks: this runs once per streamed chunk

from starlette.routing import get_route_path

from budget.params import MIN_THINK_KEY, THINK_BUDGET_ALIASES, THINK_BUDGET_KEY
from serving.augment import Layer
from serving.capture import CAPTURE, Capture
from serving.dialects import DIALECTS, Prepared, encode_message
from serving.errors import APIError
from serving.limits import InFlight, check_request, read_body
from serving.hinting import add_hint
from serving.media import gate_media
from serving.media_scan import find_media
from serving.settings import ServerSettings
from serving.strict import check_fields, parse_body
from serving.tracker import ChoiceTracker
from serving.turns import apply_turn, pop_scope

Scope = dict[str, Any]


async def _send_error(send: Any, error: APIError, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error.body()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_SETTINGS = ServerSettings()


class BudgetMiddleware:
    """The door. Every request with a body passes it, whatever its route or mount prefix:

    - the route is read the way vLLM's router reads it (`get_route_path`: a `--root-path` or proxy
      prefix stripped), so `/llm/v1/chat/completions` is the chat route here too;
    - every such body gets the request limits and the media gate (`serving.media_scan` finds media
      by the shape of the content on any route: `/tokenize`, `/invocations`, the chat batch, ...);
    - the generation routes (`serving.dialects.DIALECTS`) also get the in-flight cap, the budget
      mapping and, for chat and completions, the response additions.
    """

    def __init__(self, app: Any):
        self.app = app
        self.in_flight = InFlight()  # one per API-server process (each builds its own app)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY_METHODS:
            return await self.app(scope, receive, send)
        state = scope["app"].state
        # Settings exist even when the budget layer is off (a model with no think profile, the
        # render-only server): the door's limits and media gate never depend on the model.
        settings: ServerSettings = getattr(state, "thinkcap_settings", None) or _DEFAULT_SETTINGS
        layer: Layer | None = getattr(state, "thinkcap", None)
        prepare = DIALECTS.get(get_route_path(scope))
        if prepare is None:
            return await self._handle(scope, receive, send, settings, None, None)
        try:
            self.in_flight.enter(settings.limits)
        except APIError as error:
            return await _send_error(send, error, [(b"retry-after", str(settings.limits.retry_after_s).encode())])
        try:
            await self._handle(scope, receive, send, settings, layer, prepare)
        finally:
            self.in_flight.leave()

    async def _handle(self, scope: Scope, receive: Any, send: Any, settings: ServerSettings,
                      layer: Layer | None, prepare: Any) -> None:
        try:
            raw = await read_body(receive, settings.limits.max_body_bytes)
        except ConnectionError:
            return
        except APIError as error:
            return await _send_error(send, error, [(b"connection", b"close")])  # the rest stays unread
        try:
            body = parse_body(raw, dict(scope["headers"]).get(b"content-type", b""))
        except APIError as error:
            return await _send_error(send, error)
        if not isinstance(body, dict):  # vLLM's own 400 for whatever this is (or a form upload)
            return await self.app(scope, _replay(raw, receive), send)
        prepared: Prepared | None = None
        route = get_route_path(scope)
        try:
            check_request(body, settings.limits)
            check_fields(route, body)
            if prepare is not None:
                prepared = _prepare(prepare, body, layer, settings)
            refs = find_media(body)
            await gate_media(refs, settings.media)
        except APIError as error:
            return await _send_error(send, error)
        if prepared is not None or refs:
            raw = _dumps(body)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(raw)).encode())]}
        # Beam search runs many engine requests per choice: no `thinkcap` object there.
        if layer is None or prepared is None or prepared.kind not in _TRACKED or body.get("use_beam_search"):
            return await self.app(scope, _replay(raw, receive), send)
        capture = Capture()
        token = CAPTURE.set(capture)  # vLLM's route and its tasks run in this context
        try:
            await self.app(scope, _replay(raw, receive), _Rewriter(send, ChoiceTracker(layer, prepared, capture)))
        finally:
            CAPTURE.reset(token)


_TRACKED = frozenset({"chat", "completion", "responses", "messages"})


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: vLLM's model will name the field
        return json.dumps(body).encode()


def _prepare(prepare: Any, body: dict[str, Any], layer: Layer | None, settings: ServerSettings) -> Prepared | None:
    """The dialect's budget mapping; without a think profile a budget cannot be honoured: refused."""
    scope = pop_scope(body, settings.think_budget_scope)
    if layer is not None:
        encode = lambda text: layer.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
        prepared = encode_message(body, prepare(body, settings), encode, layer.profile)
        if scope == "turn" and prepared.params is not None:  # before the hint: it shows what is left
            prepared = apply_turn(body, prepared, lambda text: len(encode(text)))
        hint = settings.hint()
        if hint is not None:
            prepared.hint_text = add_hint(body, prepared, hint, len(layer.profile.closing_ids), layer.max_model_len)
        return prepared
    asked = [k for k in (THINK_BUDGET_KEY, *THINK_BUDGET_ALIASES, MIN_THINK_KEY) if body.get(k) is not None]
    if asked:
        raise APIError(f"{asked[0]} cannot be honoured: thinkcap found no thinking format for this model "
                       "(see the server log)", param=asked[0])
    return None


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
    """Wraps `send`: decorates a 200 JSON body as a whole, or an SSE stream event by event (only
    the events the tracker needs; the others pass as vLLM framed them, bytes unchanged)."""

    def __init__(self, send: Any, tracker: ChoiceTracker):
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
        events, sep, self.buffer = self.buffer.rpartition(b"\n\n")
        out = b"".join(self._event(e) for e in events.split(b"\n\n")) if sep else b""
        if not more:
            out, self.buffer = out + self.buffer, b""
        await self.send({"type": "http.response.body", "body": out, "more_body": more})

    async def _send_json(self) -> None:
        body = self.buffer
        try:
            obj = orjson.loads(body)
            if isinstance(obj, dict):
                self.tracker.response(obj)
                body = orjson.dumps(obj)
        except orjson.JSONDecodeError:
            pass
        assert self.start is not None
        headers = [(k, v) for k, v in self.start.get("headers", []) if k != b"content-length"]
        await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})

    def _event(self, event: bytes) -> bytes:
        """One SSE event (`data: {...}`, or `event: name` then `data: {...}`), with its separator."""
        if not self.tracker.needs(event):
            return self.tracker.fast(event) + b"\n\n"
        head, sep, rest = event.partition(b"data: ")
        data, nl, tail = rest.partition(b"\n")
        if not sep or (head and not head.endswith(b"\n")):
            return event + b"\n\n"
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event + b"\n\n"
        if not isinstance(obj, dict):
            return event + b"\n\n"
        self.tracker.chunk(obj)
        return head + b"data: " + orjson.dumps(obj) + nl + tail + b"\n\n"
