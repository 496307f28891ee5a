"""The token ids of one HTTP request, taken where vLLM's handlers get them: `engine_client.generate`.

The `thinkcap` object and the one reasoning-token count are computed from token ids. Asking vLLM
to put them in the response (`return_token_ids`) changed the response itself: vLLM 0.32 then
drops the echoed prompt of `echo: true`, and thinkcap had to delete ids the client did not ask
for (where vLLM sends `null`), on every chunk. Taking them from the engine's outputs instead
leaves vLLM's response byte-for-byte its own and works on every endpoint, Responses and Anthropic
Messages included (their request models have no `return_token_ids`).

How: the middleware puts a `Capture` in a context variable before calling vLLM's route; the
route's `engine_client.generate` calls run in that context (asyncio tasks copy it, so the
completions route's merged generators and Starlette's streaming task see it too). The wrapper
installed by `install` records each call's prompt ids, resolved `max_tokens` and output ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from vllm.sampling_params import RequestOutputKind

CAPTURE: ContextVar[Capture | None] = ContextVar("thinkcap_capture", default=None)


@dataclass
class Slot:
    """One `generate` call: one prompt, `n` outputs."""

    n: int
    max_tokens: int | None
    delta: bool  # streaming: each output carries only its new ids
    prompt_ids: list[int] = field(default_factory=list)
    outputs: dict[int, list[int]] = field(default_factory=dict)

    def add(self, out: Any) -> None:
        if out.prompt_token_ids and not self.prompt_ids:
            self.prompt_ids = list(out.prompt_token_ids)
        for o in out.outputs:
            ids = self.outputs.setdefault(o.index, [])
            if self.delta:
                ids.extend(o.token_ids)
            else:
                ids[:] = o.token_ids


class Capture:
    """Every `generate` call of one HTTP request, in call order (= prompt order on /v1/completions)."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []

    def track(self, gen: AsyncIterator[Any], sampling_params: Any) -> AsyncIterator[Any]:
        slot = Slot(max(1, getattr(sampling_params, "n", 1) or 1), getattr(sampling_params, "max_tokens", None),
                    getattr(sampling_params, "output_kind", None) == RequestOutputKind.DELTA)
        self.slots.append(slot)  # at call time: the order of the calls, not of their first outputs
        return _follow(gen, slot)

    def choice(self, index: int) -> tuple[Sequence[int], Sequence[int], int | None]:
        """(prompt ids, output ids, engine max_tokens) of response choice `index`
        (vLLM numbers the choices prompt by prompt: prompt i, output j → i * n + j)."""
        if not self.slots:
            return [], [], None
        n = self.slots[0].n
        slot = self.slots[min(index // n, len(self.slots) - 1)]
        return slot.prompt_ids, slot.outputs.get(index % n, []), slot.max_tokens


async def _follow(gen: AsyncIterator[Any], slot: Slot) -> AsyncIterator[Any]:
    try:
        async for out in gen:
            slot.add(out)
            yield out
    finally:
        await gen.aclose()  # type: ignore[attr-defined]  # a client gone: vLLM's own generator aborts the request


def install(engine_client: Any) -> None:
    """Wrap `engine_client.generate` (the one method every generation route calls) once."""
    original = engine_client.generate
    if getattr(original, "_thinkcap_capture", False):
        return

    def generate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        gen = original(*args, **kwargs)
        capture = CAPTURE.get()
        if capture is None:
            return gen
        params = args[1] if len(args) > 1 else kwargs.get("sampling_params")
        return capture.track(gen, params)

    generate._thinkcap_capture = True  # type: ignore[attr-defined]
    engine_client.generate = generate
