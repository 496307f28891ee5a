"""`--api-key`: every `/v1/*` route wants `Authorization: Bearer <key>` (as vLLM and OpenAI do)."""

from __future__ import annotations

import secrets

from fastapi import Depends, Request

from serving.context import ServerContext, get_context
from serving.errors import APIError


async def require_api_key(request: Request, ctx: ServerContext = Depends(get_context)) -> None:
    key = ctx.settings.api_key
    if not key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # compare_digest: no timing side channel on how much of the key matched.
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), key.encode()):
        raise APIError("invalid or missing API key: send 'Authorization: Bearer <key>'", status=401)
