"""Non-streaming chat completion: collect every choice's ids, then split and decode them once."""

from __future__ import annotations

from serving.chat_service import PreparedChat
from serving.context import ServerContext
from serving.postprocess import ChoiceResult, finish_choice
from serving.responses import ChatCompletion, Choice, RequestThinkcap, ResponseMessage, make_usage
from serving.runner import GenerationRun


async def collect(run: GenerationRun, n: int) -> tuple[dict[int, list[int]], dict[int, str | None]]:
    ids: dict[int, list[int]] = {i: [] for i in range(n)}
    reasons: dict[int, str | None] = dict.fromkeys(range(n))
    async for batch in run:
        for delta in batch:
            ids[delta.index].extend(delta.token_ids)
            if delta.finish_reason is not None:
                reasons[delta.index] = delta.finish_reason
    return ids, reasons


def request_info(prep: PreparedChat) -> RequestThinkcap:
    return RequestThinkcap(think_budget=prep.plan.requested, effective_think_budget=prep.plan.effective)


def to_choice(result: ChoiceResult, with_ids: bool) -> Choice:
    message = ResponseMessage(content=result.content, reasoning_content=result.reasoning, reasoning=result.reasoning)
    return Choice(index=result.index, message=message, finish_reason=result.finish_reason, thinkcap=result.info,
                  token_ids=result.token_ids if with_ids else None)


async def complete_chat(prep: PreparedChat, ctx: ServerContext, run: GenerationRun, with_ids: bool) -> ChatCompletion:
    ids, reasons = await collect(run, prep.spec.n)
    prompt_ids = prep.prompt.prompt_token_ids
    results = [
        finish_choice(ctx.backend.tokenizer, ctx.profile, prep.plan.params, prompt_ids, i, ids[i], reasons[i], prep.stops)
        for i in range(prep.spec.n)
    ]
    for r in results:
        ctx.metrics.observe_choice(r.info, len(r.token_ids))
    ctx.metrics.prompt_tokens.inc(len(prompt_ids))
    usage = make_usage(len(prompt_ids), sum(len(r.token_ids) for r in results),
                       sum(r.info.num_thinking_tokens for r in results))
    return ChatCompletion(
        id=prep.request_id, created=prep.created, model=prep.model, choices=[to_choice(r, with_ids) for r in results],
        usage=usage, thinkcap=request_info(prep), prompt_token_ids=prompt_ids if with_ids else None,
    )
