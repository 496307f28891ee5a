"""vLLM's `--api-key` check answers `{"error": "Unauthorized"}`; OpenAI clients expect the error
object (`{"error": {"message", "type", "param", "code"}}`). This outermost middleware (added by
`thinkcap serve` through vLLM's `--middleware`, so it wraps vLLM's auth) rewrites those 401s.
It reads no request body: authentication still comes before thinkcap parses anything."""

from __future__ import annotations

from typing import Any

from serving.errors import APIError

MESSAGE = "missing or invalid API key: send it as 'Authorization: Bearer <key>'"
FQCN = "serving.auth_errors.OpenAIAuthErrors"


class OpenAIAuthErrors:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rewriting = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 401:
                rewriting = True
                body = APIError(MESSAGE, status=401).body()
                await send({**message, "headers": [(b"content-type", b"application/json"),
                                                   (b"content-length", str(len(body)).encode()),
                                                   (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
            elif not rewriting:  # vLLM's own 401 body is dropped
                await send(message)

        await self.app(scope, receive, send_wrapper)
