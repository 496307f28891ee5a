"""OpenAI-style errors from thinkcap's layer: `{"error": {"message", "type", "param", "code"}}`,
the same shape vLLM's server uses for its own errors."""

from __future__ import annotations

import json

_TYPES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 413: "BadRequestError",
          422: "BadRequestError", 429: "RateLimitError", 503: "ServiceUnavailableError"}


class APIError(Exception):
    """A client mistake found by thinkcap's layer; rendered as the OpenAI error JSON."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param

    def body(self) -> bytes:
        error = {"message": self.message, "type": _TYPES.get(self.status, "InternalServerError"),
                 "param": self.param, "code": self.status}
        return json.dumps({"error": error}).encode()
