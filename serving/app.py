"""`create_app(settings, engine)`: the FastAPI application.

`engine` is a ready backend or a zero-argument factory; a factory runs in the lifespan, so the
server only starts accepting connections once the engine is up (and `thinkcap serve` can print
the URL at that moment).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from serving.backend import Backend
from serving.context import ServerContext
from serving.errors import install_error_handlers
from serving.routers import chat, health, metrics, models
from serving.settings import ServerSettings

log = logging.getLogger(__name__)

EngineSource = Backend | Callable[[], Backend]


def _count_rejection(request: Request, status: int) -> None:
    ctx: ServerContext | None = getattr(request.app.state, "thinkcap", None)
    # 499 (client went away) is counted as "aborted" by the route itself.
    if ctx is not None and request.url.path == "/v1/chat/completions" and status != 499:
        ctx.metrics.observe_request(str(status))


def create_app(settings: ServerSettings, engine: EngineSource, on_ready: Callable[[], None] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = engine() if callable(engine) else engine
        ctx = app.state.thinkcap = ServerContext.create(settings, backend)
        ctx.ready = True
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            ctx.ready = False
            await backend.shutdown()

    app = FastAPI(title="thinkcap", summary="OpenAI-compatible server with per-request thinking budgets",
                  lifespan=lifespan)
    install_error_handlers(app, on_error=_count_rejection)
    for module in (chat, models, health, metrics):
        app.include_router(module.router)
    return app
