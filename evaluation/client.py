"""One streamed chat completion against any OpenAI-compatible server, reduced to what the eval
records: the thinking and the answer text, token counts, forcing, latency and time to first token.

Thinking tokens come from the best source the server offers, recorded with the row:
`thinkcap` (our per-choice object) > `usage` (`completion_tokens_details.reasoning_tokens`) >
`chunks` (the number of streamed reasoning deltas, one token each on vLLM's servers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import openai


class RequestRefused(Exception):
    """The server answered 4xx: a setting of the run is wrong (model, budget parameter, ...), so
    every other request would fail the same way."""


@dataclass
class Reply:
    reasoning: str
    content: str
    finish_reason: str | None
    thinking_tokens: int | None
    thinking_tokens_source: str | None
    completion_tokens: int | None
    prompt_tokens: int | None
    answer_forced: bool | None  # None: the server does not say (not thinkcap)
    close_reason: str | None  # thinkcap's `close_reason` (model, budget, boundary, grace_limit, ...); None: not said
    latency_s: float
    ttft_s: float | None  # time to the first generated token (reasoning or answer delta)


def _reasoning_of(delta: dict[str, Any]) -> str:
    return delta.get("reasoning_content") or delta.get("reasoning") or ""


async def stream_chat(client: openai.AsyncOpenAI, request: dict[str, Any]) -> Reply:
    """Run one request (`stream` is forced on, with usage); 4xx raises `RequestRefused`."""
    start = time.perf_counter()
    ttft = None
    reasoning, content, n_reasoning_chunks = [], [], 0
    finish, usage, thinkcap = None, None, None
    try:
        stream = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            data = chunk.to_dict()
            usage = data.get("usage") or usage
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                text_r, text_c = _reasoning_of(delta), delta.get("content") or ""
                if (text_r or text_c) and ttft is None:
                    ttft = time.perf_counter() - start
                if text_r:
                    reasoning.append(text_r)
                    n_reasoning_chunks += 1
                content.append(text_c)
                finish = choice.get("finish_reason") or finish
                thinkcap = choice.get("thinkcap") or thinkcap
    except openai.APIStatusError as exc:
        if 400 <= exc.status_code < 500:
            raise RequestRefused(f"the server refused the request ({exc.status_code}): {exc.message}") from None
        raise
    latency = time.perf_counter() - start
    details = (usage or {}).get("completion_tokens_details") or {}
    if thinkcap and thinkcap.get("num_thinking_tokens") is not None:
        thinking, source = int(thinkcap["num_thinking_tokens"]), "thinkcap"
    elif details.get("reasoning_tokens") is not None:
        thinking, source = int(details["reasoning_tokens"]), "usage"
    else:
        thinking, source = n_reasoning_chunks, "chunks"
    return Reply(
        reasoning="".join(reasoning), content="".join(content), finish_reason=finish,
        thinking_tokens=thinking, thinking_tokens_source=source,
        completion_tokens=(usage or {}).get("completion_tokens"), prompt_tokens=(usage or {}).get("prompt_tokens"),
        answer_forced=None if thinkcap is None else bool(thinkcap.get("answer_forced")),
        close_reason=None if thinkcap is None else thinkcap.get("close_reason"),
        latency_s=latency, ttft_s=ttft,
    )
