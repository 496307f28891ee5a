"""Drive one engine request in its own asyncio task.

Why a task: Starlette cancels a streaming response through an anyio cancel scope, and anyio keeps
re-cancelling every await inside that scope. vLLM's `AsyncLLM.generate` aborts the engine request
from an `except CancelledError` handler that awaits, which such a scope can interrupt, leaving the
request generating for nobody. A plain task, cancelled once with `task.cancel()` (synchronous, so
callable from any `finally`), lets vLLM's abort run to completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from serving.backend import Backend, RenderedPrompt, SamplingSpec, TokenDelta

_END = object()


class RequestAborted(Exception):
    """The engine request was cancelled (the client went away) before it finished."""


class GenerationRun:
    def __init__(self, backend: Backend, prompt: RenderedPrompt, spec: SamplingSpec, request_id: str):
        self.backend = backend
        self.request_id = request_id
        self.finished = False
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(prompt, spec), name=f"generate-{request_id}")

    async def _pump(self, prompt: RenderedPrompt, spec: SamplingSpec) -> None:
        try:
            async for batch in self.backend.generate(prompt, spec, self.request_id):
                self._queue.put_nowait(batch)
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            self._queue.put_nowait(RequestAborted(self.request_id))  # wake a waiting consumer
            raise
        except Exception as exc:  # handed to the consumer, which turns it into an HTTP error
            self._queue.put_nowait(exc)

    async def __aiter__(self) -> AsyncIterator[list[TokenDelta]]:
        while True:
            item = await self._queue.get()
            if item is _END:
                self.finished = True
                return
            if isinstance(item, Exception):
                self.finished = True
                raise item
            yield item

    def cancel(self) -> bool:
        """Abort the engine request unless it already ended; True if it was still running."""
        if self.finished or self._task.done():
            return False
        self._task.cancel()  # AsyncLLM.generate aborts the engine request on CancelledError
        return True
