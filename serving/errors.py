"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}`.

Every client mistake becomes a 4xx with a message saying what to change; only our own bugs
become 500, and those never take the server down (FastAPI handles each request in isolation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from budget import BudgetError

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 499: "client_closed_request", 503: "service_unavailable_error"}


class APIError(Exception):
    """Raised anywhere in request handling; rendered as the OpenAI error JSON."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


def error_body(message: str, status: int, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": status}}


def error_response(message: str, status: int, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, status, param), status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        # Pydantic prefixes messages from our validators with "Value error, ".
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        param = param or (loc[0] if loc else None)
    return "; ".join(parts) or "invalid request", param


def install_error_handlers(app: FastAPI, on_error: Callable[[Request, int], None] | None = None) -> None:
    """`on_error(request, status)` is told about every error response (metrics count rejections)."""

    def respond(request: Request, message: str, status: int, param: str | None = None) -> JSONResponse:
        if on_error is not None:
            on_error(request, status)
        return error_response(message, status, param)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return respond(request, exc.message, exc.status, exc.param)

    @app.exception_handler(BudgetError)
    async def _budget_error(request: Request, exc: BudgetError) -> JSONResponse:
        return respond(request, str(exc), 400, "think_budget")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return respond(request, message, 400, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return respond(request, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error while serving a request")
        return respond(request, f"internal server error: {type(exc).__name__}", 500)
