"""A stream the client abandons must cancel its engine request (fake backend; the real engine's
version is test_server_engine.py::test_disconnect_aborts_the_engine_request)."""

from __future__ import annotations

import asyncio

import pytest

from serving.backend import SamplingSpec
from serving.chat_service import prepare_chat
from serving.context import ServerContext
from serving.protocol import ChatCompletionRequest
from serving.runner import GenerationRun, RequestAborted
from serving.settings import ServerSettings
from serving.streaming import stream_chat
from tests.serving.fake_backend import FakeBackend


def make_ctx(tiny_tokenizer) -> ServerContext:
    backend = FakeBackend(tiny_tokenizer, step_delay=0.01)
    return ServerContext.create(ServerSettings(model="tiny"), backend)


def test_closing_the_stream_aborts_the_engine_request(tiny_tokenizer):
    ctx = make_ctx(tiny_tokenizer)

    async def scenario():
        body = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], stream=True,
                                     max_tokens=400, min_think_tokens=300)
        prep = await prepare_chat(body, ctx)
        run = GenerationRun(ctx.backend, prep.prompt, prep.spec, prep.request_id)
        stream = stream_chat(prep, ctx, run, False, False, 0.0)
        for _ in range(4):
            await anext(stream)
        assert ctx.backend.num_unfinished_requests() == 1
        await stream.aclose()  # what Starlette does when the client goes away
        await asyncio.sleep(0.05)
        return ctx.backend.num_unfinished_requests()

    assert asyncio.run(scenario()) == 0
    assert ctx.metrics.requests.labels(outcome="aborted")._value.get() == 1


def test_cancel_wakes_a_waiting_consumer(tiny_tokenizer):
    backend = FakeBackend(tiny_tokenizer, step_delay=0.05)

    async def scenario():
        prompt = await backend.render("<think>", None)
        run = GenerationRun(backend, prompt, SamplingSpec(max_tokens=100), "r1")
        consumer = asyncio.create_task(anext(run.__aiter__()))
        await asyncio.sleep(0.01)
        assert run.cancel()
        with pytest.raises(RequestAborted):
            await consumer
        assert not run.cancel()  # already over

    asyncio.run(scenario())
