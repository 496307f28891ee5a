"""The real backend: vLLM's `AsyncLLM` with the think-budget logits processor loaded once.

Prompts go through the engine's own renderer (`render_cmpl_async`), the path vLLM's OpenAI server
uses, so multimodal processing (GLM-4.1V image/video placeholders, M-RoPE) is vLLM's; we get the
final prompt ids back before generating, which is what the effective budget needs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.exceptions import GracefulHTTPError, VLLMClientError, VLLMNotFoundError
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM

from serving.backend import RenderedPrompt, SamplingSpec, TokenDelta
from vllm_adapter.engine_env import prepare_engine_env, processor_kwargs
from serving.errors import APIError

log = logging.getLogger(__name__)


def build_engine_args(engine_args: AsyncEngineArgs) -> AsyncEngineArgs:
    """Add our logits processor to whatever the user configured (keeping theirs too)."""
    extra = processor_kwargs()
    mine = list(extra.pop("logits_processors", []))
    theirs = [p for p in (engine_args.logits_processors or []) if p not in mine]
    return dataclasses.replace(engine_args, logits_processors=theirs + mine, **extra)


def _client_error(exc: Exception) -> APIError:
    if isinstance(exc, GracefulHTTPError):
        return APIError(exc.message, status=int(exc.http_status))
    status = 404 if isinstance(exc, VLLMNotFoundError) else 400
    return APIError(str(exc), status=status)


class VLLMBackend:
    def __init__(self, engine: AsyncLLM, model_path: str):
        self.engine = engine
        self.model_path = model_path
        model_config = engine.model_config
        self.max_model_len: int = model_config.max_model_len
        self.model_type: str | None = getattr(model_config.hf_config, "model_type", None)
        self.tokenizer: Any = engine.get_tokenizer()
        # The model's generation_config.json defaults (temperature, top_p, ...), as vLLM's server uses.
        self.defaults: dict[str, Any] = model_config.get_diff_sampling_param()
        renderer = engine.renderer
        # Chat templates already contain the BOS-like tokens ([gMASK]<sop> for GLM).
        self._tok_params = dataclasses.replace(renderer.default_chat_tok_params, add_special_tokens=False)

    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs) -> VLLMBackend:
        prepare_engine_env()
        args = build_engine_args(engine_args)
        return cls(AsyncLLM.from_engine_args(args), args.model)

    async def render(self, prompt_text: str, mm_data: dict[str, list] | None) -> RenderedPrompt:
        prompt: dict[str, Any] = {"prompt": prompt_text}
        if mm_data:
            prompt["multi_modal_data"] = mm_data
        try:
            (engine_input,) = await self.engine.renderer.render_cmpl_async([prompt], self._tok_params)
        except VLLMClientError as exc:
            raise _client_error(exc) from None
        except (ValueError, TypeError, RuntimeError) as exc:  # the HF processor rejecting media
            raise APIError(f"could not process the prompt's media: {exc}", param="messages") from None
        return RenderedPrompt(list(engine_input["prompt_token_ids"]), engine_input)

    def sampling_params(self, spec: SamplingSpec) -> SamplingParams:
        values = {k: v for k, v in self.defaults.items() if k != "max_tokens"}
        given = {"temperature": spec.temperature, "top_p": spec.top_p, "seed": spec.seed}
        values.update({k: v for k, v in given.items() if v is not None})
        return SamplingParams(
            n=spec.n, max_tokens=spec.max_tokens, stop=spec.stop or None, extra_args=spec.extra_args,
            output_kind=RequestOutputKind.DELTA,
            detokenize=bool(spec.stop),  # we decode from ids ourselves; vLLM only needs text for stop strings
            **values,
        )

    async def generate(self, prompt: RenderedPrompt, spec: SamplingSpec, request_id: str) -> AsyncIterator[list[TokenDelta]]:
        try:
            params = self.sampling_params(spec)
            async for out in self.engine.generate(prompt.engine_input, params, request_id):
                yield [TokenDelta(o.index, list(o.token_ids), o.finish_reason, o.stop_reason) for o in out.outputs]
        except (VLLMClientError, GracefulHTTPError) as exc:
            raise _client_error(exc) from None

    async def abort(self, request_id: str) -> None:
        await self.engine.abort(request_id)

    def num_unfinished_requests(self) -> int:
        return self.engine.get_num_unfinished_requests()

    async def check_health(self) -> None:
        await self.engine.check_health()

    async def shutdown(self) -> None:
        self.engine.shutdown()
