"""`POST /v1/chat/completions`, non-streaming and SSE streaming."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from serving.auth import require_api_key
from serving.chat_service import prepare_chat
from serving.completion import complete_chat
from serving.context import ServerContext, get_context
from serving.errors import APIError
from serving.protocol import ChatCompletionRequest
from serving.responses import ChatCompletion
from serving.runner import GenerationRun, RequestAborted
from serving.streaming import stream_chat

router = APIRouter(dependencies=[Depends(require_api_key)])


async def _cancel_on_disconnect(request: Request, run: GenerationRun) -> None:
    """A non-streaming client that hangs up should not keep the engine busy (vLLM does the same).
    The body is already read, so the next ASGI message is the disconnect."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            run.cancel()
            return


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, ctx: ServerContext = Depends(get_context)
) -> ChatCompletion | StreamingResponse:
    started = time.monotonic()
    prep = await prepare_chat(body, ctx)
    run = GenerationRun(ctx.backend, prep.prompt, prep.spec, prep.request_id)
    if body.stream:
        stream = stream_chat(prep, ctx, run, body.return_token_ids, body.include_usage, started)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    ctx.metrics.in_flight.inc()
    watcher = asyncio.create_task(_cancel_on_disconnect(request, run))
    try:
        result = await complete_chat(prep, ctx, run, body.return_token_ids)
    except RequestAborted:
        ctx.metrics.observe_request("aborted", time.monotonic() - started)
        raise APIError("the client disconnected; the request was aborted", status=499) from None
    finally:
        watcher.cancel()
        run.cancel()
        ctx.metrics.in_flight.dec()
    ctx.metrics.observe_request("ok", time.monotonic() - started)
    return result
