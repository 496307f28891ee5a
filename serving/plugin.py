"""`vllm.endpoint_plugins` entry point: thinkcap's budget layer inside vLLM's OpenAI server.

`attach_router` runs in vLLM's `build_app` before vLLM adds its own middleware, so the budget
middleware ends up inside auth/CORS (see `serving.middleware`). `init_state` builds the layer's
state from the engine (tokenizer, think profile, context length) and thinkcap's settings, which
`thinkcap serve` puts in vLLM's argument namespace (`args.thinkcap`); every API-server process
(`--api-server-count N`) runs both hooks. vLLM loads endpoint plugins only when `VLLM_PLUGINS`
names them: `thinkcap serve` sets that; plain `vllm serve` users may set `VLLM_PLUGINS=thinkcap`
(then the layer runs with default settings).
"""

from __future__ import annotations

import asyncio
import logging
from argparse import Namespace
from typing import Any

from budget import ProfileError, build_profile
from serving import video_backend  # noqa: F401 - registers thinkcap's decord loader with vLLM
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import capture
from serving.augment import Layer
from serving.middleware import BudgetMiddleware
from serving.settings import ServerSettings
from serving.strict import http_error

log = logging.getLogger(__name__)
PLUGIN_NAME = "thinkcap"


class ThinkcapEndpointPlugin:
    name = PLUGIN_NAME
    required_tasks = ("generate",)

    def attach_router(self, app: Any) -> None:
        app.add_middleware(BudgetMiddleware)
        # The router's own 404/405 as OpenAI errors (vLLM registers FastAPI's subclass only).
        app.add_exception_handler(StarletteHTTPException, http_error)

    async def init_state(self, engine_client: Any, state: Any, args: Namespace) -> None:
        state.thinkcap = None
        # The door's limits and media gate apply on every server, budget layer or not.
        state.thinkcap_settings = settings = getattr(args, "thinkcap", None) or ServerSettings()
        if engine_client is None:
            return
        model_config = engine_client.model_config
        tokenizer = engine_client.renderer.tokenizer
        try:
            profile = build_profile(tokenizer, model_type=getattr(model_config.hf_config, "model_type", None))
        except ProfileError as exc:
            log.warning("thinkcap budget layer off for %s: %s", model_config.model, exc)
            return
        capture.install(engine_client)  # the ids behind the `thinkcap` object (serving.capture)
        state.thinkcap = Layer(settings, profile, tokenizer, model_config.max_model_len,
                               model_config.get_diff_sampling_param())
        if getattr(args, "thinkcap_announce", False):
            state.thinkcap_announcer = asyncio.create_task(_announce(args.host or "127.0.0.1", args.port))


async def _announce(host: str, port: int) -> None:
    """Print the URL once the socket accepts connections (uvicorn starts listening after init_state)."""
    while True:
        try:
            _, writer = await asyncio.open_connection(host if host not in ("0.0.0.0", "::") else "127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    print(f"thinkcap serve: ready at http://{host}:{port}/v1", flush=True)
