"""`thinkcap demo`: the Gradio page, talking to a thinkcap server over HTTP.

With `--api-base` it uses that server; without, it starts `thinkcap serve` (the embedded tiny
model unless `--serve-args` says otherwise) on a free port and stops it on exit, so
`thinkcap demo` alone gives a working page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys

from ui.app import build_demo, launch_demo
from ui.client import ChatClient
from ui.examples import ensure_examples
from ui.server_proc import LocalServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thinkcap demo", description=__doc__.splitlines()[0])
    server = parser.add_argument_group("model server")
    server.add_argument("--api-base", help="OpenAI-compatible base URL, e.g. "
                        "http://localhost:8000/v1 (default: start a local `thinkcap serve`)")
    server.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "EMPTY"),
                        help="the server's --api-key (default: $OPENAI_API_KEY or none)")
    server.add_argument("--model", help="model id (default: the first one /v1/models lists)")
    server.add_argument("--serve-args", default="", metavar="ARGS",
                        help="extra arguments for the local `thinkcap serve`, e.g. a model path")
    server.add_argument("--startup-timeout", type=float, default=900.0, metavar="SECONDS",
                        help="how long to wait for the local server's /health (default: 900)")
    page = parser.add_argument_group("page")
    page.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    page.add_argument("--port", type=int, default=7860, help="port of the page (default: 7860)")
    page.add_argument("--share", action="store_true", help="also publish a gradio.live link")
    page.add_argument("--default-budget", type=int, default=256, metavar="TOKENS",
                      help="the think budget the slider starts at (default: 256)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM must unwind like Ctrl-C, so that the server we started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return run(args)
    except RuntimeError as exc:  # the local server failed to start; its log tail is in `exc`
        print(f"thinkcap demo: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        api_base = args.api_base
        if api_base is None:
            print("Starting `thinkcap serve` for the demo (first start can take minutes)…",
                  flush=True)
            local = stack.enter_context(LocalServer(shlex.split(args.serve_args),
                                                    args.startup_timeout))
            print(f"Model server ready at {local.api_base} (log: {local.log_path})", flush=True)
            api_base = local.api_base
        media = ensure_examples()
        client = ChatClient(api_base, args.api_key, args.model)
        demo = build_demo(client, media, default_budget=args.default_budget)
        try:
            launch_demo(demo, media, host=args.host, port=args.port, share=args.share)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a demo ends; the ExitStack stops the server
    return 0
