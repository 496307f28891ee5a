"""`GET /health`: 200 once the engine is up and answering, 503 otherwise (load balancers poll it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from serving.context import ServerContext, get_context
from serving.errors import error_response

router = APIRouter()


@router.get("/health")
async def health(ctx: ServerContext = Depends(get_context)) -> JSONResponse:
    if not ctx.ready:
        return error_response("the engine is starting", 503)
    try:
        await ctx.backend.check_health()
    except Exception as exc:  # a dead engine: report it, do not crash the probe
        return error_response(f"the engine is not healthy: {type(exc).__name__}: {exc}", 503)
    return JSONResponse({"status": "ok"})
