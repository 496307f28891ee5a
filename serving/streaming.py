"""SSE streaming: reasoning deltas while the model thinks, content deltas for the answer.

Per engine step and choice: a chunk with `delta.reasoning_content`/`delta.reasoning` if thinking
text became final, then one with `delta.content` if answer text did. The chunk that carries a
choice's `finish_reason` also carries `thinkcap` (per choice and per request). With
`stream_options.include_usage`, a last chunk with empty `choices` carries `usage`; then `[DONE]`.
If the client goes away, the `finally` cancels the engine request (see serving/runner.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

from serving.chat_service import PreparedChat
from serving.completion import request_info
from serving.context import ServerContext
from serving.errors import APIError, error_body
from serving.postprocess import ChoiceStream
from serving.responses import ChatCompletionChunk, ChunkChoice, Delta, make_usage
from serving.runner import GenerationRun

log = logging.getLogger(__name__)


def sse(chunk: ChatCompletionChunk | dict) -> str:
    body = chunk.model_dump_json() if isinstance(chunk, ChatCompletionChunk) else json.dumps(chunk)
    return f"data: {body}\n\n"


class ChunkWriter:
    """Builds the chunks of one response (shared id/created/model)."""

    def __init__(self, prep: PreparedChat, with_ids: bool):
        self.prep = prep
        self.with_ids = with_ids

    def chunk(self, choices: list[ChunkChoice], **extra) -> str:
        p = self.prep
        return sse(ChatCompletionChunk(id=p.request_id, created=p.created, model=p.model, choices=choices, **extra))

    def text(self, index: int, texts: dict[str, str], ids: list[int], final: bool = False) -> list[str]:
        """Reasoning chunk then content chunk; the step's ids ride on the last one emitted."""
        out: list[tuple[Delta, list[int] | None]] = []
        if texts["reasoning"]:
            out.append((Delta(reasoning_content=texts["reasoning"], reasoning=texts["reasoning"]), None))
        if texts["answer"]:
            out.append((Delta(content=texts["answer"]), None))
        if self.with_ids and ids:
            if not out:
                out.append((Delta(), None))
            out[-1] = (out[-1][0], ids)
        return [self.chunk([ChunkChoice(index=index, delta=d, token_ids=i)]) for d, i in out]


async def stream_chat(prep: PreparedChat, ctx: ServerContext, run: GenerationRun, with_ids: bool,
                      include_usage: bool, started: float) -> AsyncIterator[str]:
    n, prompt_ids = prep.spec.n, prep.prompt.prompt_token_ids
    writer = ChunkWriter(prep, with_ids)
    outcome = "aborted"
    ctx.metrics.in_flight.inc()
    try:
        streams = [ChoiceStream(ctx.backend.tokenizer, ctx.profile, prep.plan.params, prompt_ids, prep.stops)
                   for _ in range(n)]
        first = {"prompt_token_ids": prompt_ids} if with_ids else {}
        yield writer.chunk([ChunkChoice(index=i, delta=Delta(role="assistant")) for i in range(n)], **first)
        async for batch in run:
            for d in batch:
                for line in writer.text(d.index, streams[d.index].push(d.token_ids), d.token_ids):
                    yield line
                if d.finish_reason is not None:
                    for line in _finish(writer, streams[d.index], d.index, d.finish_reason, prep, ctx):
                        yield line
        if include_usage:
            usage = make_usage(len(prompt_ids), sum(len(s.ids) for s in streams),
                               sum(s.info().num_thinking_tokens for s in streams))
            yield writer.chunk([], usage=usage)
        ctx.metrics.prompt_tokens.inc(len(prompt_ids))
        outcome = "ok"
    except APIError as exc:
        outcome = str(exc.status)
        yield sse(error_body(exc.message, exc.status, exc.param))
    except Exception as exc:  # the engine failed mid-stream: the status line is long gone
        outcome = "error"
        log.exception("stream %s failed", prep.request_id)
        yield sse(error_body(f"generation failed: {type(exc).__name__}", 500))
    finally:
        if run.cancel():
            log.info("client went away: aborted %s", prep.request_id)
        ctx.metrics.in_flight.dec()
        ctx.metrics.observe_request(outcome, time.monotonic() - started)
    yield "data: [DONE]\n\n"


def _finish(writer: ChunkWriter, stream: ChoiceStream, index: int, reason: str,
            prep: PreparedChat, ctx: ServerContext) -> list[str]:
    lines = writer.text(index, stream.finish(), [])
    info = stream.info()
    ctx.metrics.observe_choice(info, len(stream.ids))
    last = ChunkChoice(index=index, delta=Delta(), finish_reason=reason, thinkcap=info)
    return lines + [writer.chunk([last], thinkcap=request_info(prep))]
