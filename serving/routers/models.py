"""`GET /v1/models`: the one served model."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.auth import require_api_key
from serving.context import ServerContext, get_context
from serving.responses import ModelCard, ModelList

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.get("/v1/models")
async def list_models(ctx: ServerContext = Depends(get_context)) -> ModelList:
    card = ModelCard(id=ctx.settings.model_name, root=ctx.settings.model, max_model_len=ctx.backend.max_model_len)
    return ModelList(data=[card])
