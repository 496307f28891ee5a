"""Turn a validated chat request into an engine request: model check, budget, media, prompt.

Cheap checks run first (model name, n, budget arithmetic), then media is fetched and decoded,
then the prompt is rendered by the engine's multimodal processor, and only then is the effective
budget fixed (it depends on the prompt's length when max_tokens is not given).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from serving.backend import RenderedPrompt, SamplingSpec
from serving.budget_plan import BudgetPlan, budget_applies, checked_budget, finalize, requested_budget
from serving.context import ServerContext
from serving.errors import APIError
from serving.media import load_media
from serving.prompt import add_budget_suffix, render_chat
from serving.protocol import ChatCompletionRequest


@dataclass(frozen=True)
class PreparedChat:
    request_id: str
    created: int
    model: str
    prompt: RenderedPrompt
    spec: SamplingSpec
    plan: BudgetPlan
    stops: list[str]


def check_model(req: ChatCompletionRequest, ctx: ServerContext) -> None:
    # OpenAI clients always send `model`; accept the served name and the model path it came from.
    if req.model and req.model not in {ctx.settings.model_name, ctx.settings.model}:
        raise APIError(f"model {req.model!r} does not exist; this server serves {ctx.settings.model_name!r}",
                       status=404, param="model")


def preflight_budget(req: ChatCompletionRequest, requested: int | None, ctx: ServerContext) -> None:
    """Reject impossible budgets before fetching media: max_tokens too small for the closing
    sequence plus the answer reserve, or min_think_tokens above the budget."""
    closing = 0 if requested == 0 else len(ctx.profile.closing_ids)
    checked_budget(requested, req.output_limit, closing, ctx.settings.answer_reserve, 0, req.min_think_tokens or 0)


async def prepare_chat(req: ChatCompletionRequest, ctx: ServerContext) -> PreparedChat:
    check_model(req, ctx)
    if req.n > ctx.settings.max_n:
        raise APIError(f"n={req.n} is above this server's limit of {ctx.settings.max_n}", param="n")
    requested = requested_budget(req, ctx.settings)
    preflight_budget(req, requested, ctx)
    media = await load_media(req.messages, ctx.settings.media)
    text = render_chat(ctx.backend.tokenizer, req.messages)
    prompt = add_budget_suffix(text, ctx.profile, requested, budget_applies(req, requested))
    rendered = await ctx.backend.render(prompt.text, media.as_mm_data())
    plan = finalize(req, requested, ctx.profile, rendered.prompt_token_ids, ctx.backend.max_model_len,
                    ctx.settings.answer_reserve)
    spec = SamplingSpec(
        max_tokens=plan.max_tokens, n=req.n, temperature=req.temperature, top_p=req.top_p, seed=req.seed,
        stop=req.stop, extra_args=plan.params.to_extra_args() if plan.params else None,
    )
    return PreparedChat(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), ctx.settings.model_name,
                        rendered, spec, plan, req.stop)
