"""Stricter than vLLM at the door: what vLLM's request models let through loosely, refused with a
400 that names the field (issue 19.4).

- The body is parsed strictly: UTF-8 only, and no `NaN`, `Infinity` or a number too large for a
  double (`1e400`). Python's json accepts all three, and thinkcap re-serialises the body with
  orjson, which writes a non-finite float as `null`: `temperature: NaN` became "no temperature"
  and `max_tokens: Infinity` "no limit", where vLLM's own server refuses them.
- Numbers: a boolean where vLLM's request model declares a number (pydantic's lax mode reads
  `max_tokens: true` as 1). The fields come from vLLM's own request models, so a field vLLM adds
  is checked too.
- Chat message roles: OpenAI's six. vLLM accepts any string (its custom message type), and the
  chat template then renders `wizard` as whatever it does with an unknown role.
- Errors from Starlette's router (unknown route 404, wrong method 405) get the OpenAI error body;
  vLLM's own handler covers FastAPI's `HTTPException` but not Starlette's, which the router raises.
"""

from __future__ import annotations

import json
import math
import types
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any, Union, get_args, get_origin

from starlette.requests import Request
from starlette.responses import JSONResponse

from serving.errors import APIError

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
def parse_body(raw: bytes, content_type: bytes) -> Any:
    """The JSON body; None for an empty body, or for one that is not JSON sent as something other
    than JSON (a form upload: vLLM reads or refuses those itself). A JSON body is parsed and gated
    whatever its declared type: some vLLM routes read `raw_request.json()` regardless."""
    if not raw:
        return None
    declared_json = not content_type or b"json" in content_type.lower()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        if not declared_json:
            return None
        raise APIError(f"request body is not valid UTF-8 (byte {exc.start})", param="body") from None
    except RecursionError:  # deeper than the interpreter's stack: certainly over the depth limit
        raise APIError("request JSON is nested too deeply", param="body") from None
    except ValueError as exc:
        if not declared_json:
            return None
        raise APIError(f"request body is not valid JSON: {exc}", param="body") from None
    path = _non_finite(body)
    if path is not None:
        raise APIError(f"{path or 'body'} is not a finite number (NaN, Infinity and numbers beyond "
                       "a double's range are not JSON numbers)", param=path or "body")
    return body


def _non_finite(obj: Any) -> str | None:
    """Dotted path of the first NaN/±Infinity (1e400 parses as inf), or None (iterative walk)."""
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value))
    return None


def _leaves(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaves(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


@cache
def numeric_fields(kind: str) -> frozenset[str]:
    """Top-level fields vLLM's request model for `kind` declares as int/float (or None)."""
    from vllm.entrypoints.anthropic.protocol import AnthropicMessagesRequest
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest

    model = {"chat": ChatCompletionRequest, "chat_batch": ChatCompletionRequest, "completion": CompletionRequest,
             "responses": ResponsesRequest, "messages": AnthropicMessagesRequest}[kind]
    out = set()
    for name, info in model.model_fields.items():
        leaves = [a for a in _leaves(info.annotation) if a is not type(None)]
        if leaves and all(a in (int, float) for a in leaves):
            out.add(info.alias or name)
    return frozenset(out)


_OBJECT_FIELDS = ("structured_outputs",)
_ROUTE_KINDS = {"/v1/chat/completions": "chat", "/v1/completions": "completion", "/v1/responses": "responses",
                "/v1/messages": "messages", "/v1/chat/completions/batch": "chat_batch"}


def check_fields(route: str, body: dict[str, Any]) -> None:
    """Booleans in number fields, unknown chat roles: 400 naming the field (generation routes)."""
    kind = _ROUTE_KINDS.get(route)
    if route == "/invocations":  # SageMaker: chat when it has messages, else completions (as vLLM decides)
        kind = "chat" if "messages" in body else "completion"
    if kind is None:
        return
    for name in numeric_fields(kind):
        if isinstance(body.get(name), bool):
            raise APIError(f"{name} must be a number, not a boolean ({json.dumps(body[name])})", param=name)
    # vLLM's request models read these as objects before validating them: anything else was a 500
    # ("'bool' object has no attribute 'get'", found by the schema fuzz with structured_outputs: true).
    for name in _OBJECT_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise APIError(f"{name} must be an object, not {json.dumps(body[name])[:40]}", param=name)
    if kind in ("chat", "chat_batch"):
        _check_roles(body.get("messages"), "messages")
    if kind == "responses":
        _check_output_messages(body.get("input"))


def _check_output_messages(items: Any) -> None:
    """vLLM reads an assistant `message` input item's `content[0]` unchecked: an empty list was a 500
    ("list index out of range", found by the schema fuzz)."""
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if (isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "assistant"
                and item.get("content") == []):
            raise APIError(f"input.{i}.content: an assistant message needs at least one content part",
                           param=f"input.{i}.content")


def _check_roles(messages: Any, param: str) -> None:
    if not isinstance(messages, list):
        return  # vLLM's model refuses what is not a list
    batch = bool(messages) and all(isinstance(m, list) for m in messages)  # /chat/completions/batch
    for i, message in enumerate(messages):
        if batch:
            _check_roles(message, f"{param}.{i}")
            continue
        role = message.get("role") if isinstance(message, dict) else None
        if isinstance(role, str) and role not in CHAT_ROLES:
            raise APIError(f"{param}.{i}.role {role!r} is not one of {', '.join(CHAT_ROLES)}", param=f"{param}.{i}.role")


async def http_error(request: Request, exc: Any) -> JSONResponse:
    """Starlette's HTTPException (router 404/405) as the OpenAI error object; its headers (Allow) kept."""
    status = exc.status_code
    error = {"message": str(exc.detail), "type": HTTPStatus(status).phrase, "param": None, "code": status}
    return JSONResponse({"error": error}, status_code=status, headers=getattr(exc, "headers", None))
