"""`thinkcap serve [MODEL] [vLLM serve flags] [thinkcap flags]` — vLLM's own OpenAI server plus
thinkcap's budget layer.

Every `vllm serve` flag works (they come from vLLM's `make_arg_parser`), and the server is started
by vLLM's own `serve` command, so endpoints, parameters, errors, metrics, `--api-key`,
`--api-server-count` and data-parallel scale-out are vLLM's. thinkcap adds:
- its flags (budget defaults, effort table, answer reserve, media limits) as `args.thinkcap`;
- the think-budget logits processor in `--logits-processors`;
- `--reasoning-parser glm41v` by default for GLM-4.1V models, and the model's chat template with
  `<think>` ending the generation prompt (unless `--chat-template` is given);
- `VLLM_PLUGINS` naming the `thinkcap` endpoint plugin (the budget middleware), plus every
  plugin vLLM would have loaded anyway.
Without MODEL the tiny random-weight GLM-4.1V is built (once) and served.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib.metadata import entry_points
from pathlib import Path

from budget import BudgetError, parse_think_budget
from budget.hint import POLICY_FILE, BudgetHint, HintError, parse_hint, read_policy_hint
from serving.auth_errors import FQCN as FQCN_AUTH
from serving.limits import RequestLimits
from serving.settings import MediaLimits, ServerSettings, parse_effort_table
from vllm_adapter.engine_env import CPU_ENV_DEFAULTS, PROCESSOR_FQCN, is_cpu_build, prepare_engine_env

TINY_MODEL_NAME = "thinkcap-tiny-glm4v"  # served name of the embedded model
GLM41V_MODEL_TYPES = ("glm4v", "glm4v_moe")
OPT_IN_PLUGINS = {"lora_hf_hub_resolver"}  # vLLM enables it only when VLLM_PLUGINS names it
PLUGIN_GROUPS = ("vllm.general_plugins", "vllm.platform_plugins", "vllm.io_processor_plugins",
                 "vllm.stat_logger_plugins", "vllm.endpoint_plugins")


def _budget_arg(text: str) -> int | None:
    try:
        return parse_think_budget(int(text), "--default-think-budget")
    except (ValueError, BudgetError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hint_arg(text: str) -> str:
    try:
        parse_hint(text)
    except HintError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _efforts_arg(text: str) -> dict[str, int]:
    try:
        return parse_effort_table(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SERVER_KEYS = ("default_think_budget", "answer_reserve", "structured_answer_reserve", "reasoning_effort_budgets", "max_n",
               "think_budget_grace", "think_budget_message", "think_budget_action",
               "think_budget_scope", "answer_required")
MEDIA_KEYS = ("max_images_per_request", "max_videos_per_request", "image_max_pixels", "video_max_duration_s",
              "fetch_timeout_s", "fetch_max_bytes", "allow_private_media_urls", "max_redirects")
LIMIT_KEYS = ("max_body_bytes", "max_json_depth", "max_messages", "max_content_parts", "max_stop_chars",
              "max_in_flight_requests")


def add_thinkcap_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("thinkcap budget layer")
    g.add_argument("--default-think-budget", type=_budget_arg, metavar="N",
                   help="budget for requests that send none (-1 = unlimited, the default)")
    g.add_argument("--answer-reserve", type=int, metavar="N",
                   help="tokens kept for the answer after a forced close (default 16)")
    g.add_argument("--structured-answer-reserve", type=int, metavar="N",
                   help="the same for answers a grammar constrains: response_format, structured_outputs, "
                        "required/named tool_choice (default 256)")
    g.add_argument("--reasoning-effort-budgets", type=_efforts_arg, metavar="TABLE",
                   help="reasoning_effort → budget, e.g. minimal=64,low=256,medium=1024,high=4096,xhigh=16384")
    g.add_argument("--max-n", type=int, help="largest n per request (default 16)")
    g.add_argument("--think-budget-grace", type=int, metavar="G",
                   help="after the budget, think at most G more tokens and close at the first sentence/line "
                        "end or when the model ranks </think> in its top 4 (default 0: the exact cut)")
    g.add_argument("--think-budget-message", metavar="TEXT",
                   help="wrap-up text forced before the closing sequence; counts as thinking (default none)")
    g.add_argument("--think-budget-action", choices=("force", "truncate"),
                   help="at the budget: force the answer (default) or stop the response (finish_reason length)")
    g.add_argument("--think-budget-scope", choices=("request", "turn"),
                   help="turn: thinking in the assistant messages after the last user message (an agent's earlier "
                        "tool-calling steps) is taken off the budget, one budget per turn (default request)")
    g.add_argument("--no-answer-required", dest="answer_required", action="store_false", default=None,
                   help="let the model end inside its thought or with an empty answer (default: it answers)")
    g.add_argument("--budget-hint", metavar="TEMPLATE|off", type=_hint_arg,
                   help="tell the model its budget in the prompt, e.g. 'Think for at most {budget} tokens.' "
                        "(appended to the last user message; the budget after the answer reserve). Default: the "
                        "hint a policy folder records in thinkcap_policy.json, else off")
    m = parser.add_argument_group("thinkcap media gate")
    m.add_argument("--max-images-per-request", type=int, help="default 8")
    m.add_argument("--max-videos-per-request", type=int, help="default 2")
    m.add_argument("--image-max-pixels", type=int, help="largest image/frame area accepted (default 4096*4096)")
    m.add_argument("--video-max-duration", type=float, dest="video_max_duration_s", help="seconds (default 600)")
    m.add_argument("--media-fetch-timeout", type=float, dest="fetch_timeout_s", help="seconds (default 10)")
    m.add_argument("--media-max-bytes", type=int, dest="fetch_max_bytes", help="per media item (default 64 MiB)")
    m.add_argument("--allow-private-media-urls", action="store_true", default=None,
                   help="let media URLs reach loopback/private/link-local addresses (off: only public ones)")
    r = parser.add_argument_group("thinkcap request limits")
    r.add_argument("--max-request-body-bytes", type=int, dest="max_body_bytes", help="default 128 MiB (413 above)")
    r.add_argument("--max-json-depth", type=int, dest="max_json_depth", help="nesting levels (default 64)")
    r.add_argument("--max-request-messages", type=int, dest="max_messages", help="messages/input items (default 1024)")
    r.add_argument("--max-content-parts", type=int, dest="max_content_parts", help="per message (default 256)")
    r.add_argument("--max-stop-chars", type=int, dest="max_stop_chars", help="per stop string (default 512)")
    r.add_argument("--max-in-flight-requests", type=int, dest="max_in_flight_requests",
                   help="generation requests per API server, running or queued; more get 429 (default 1024)")
    m.add_argument("--media-max-redirects", type=int, dest="max_redirects", help="per media URL (default 5)")


def build_parser(cpu: bool) -> argparse.ArgumentParser:
    try:
        from vllm.entrypoints.common.cli_args import make_arg_parser  # vLLM >= 0.33
    except ImportError:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser  # 0.32
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="thinkcap serve", description=__doc__.splitlines()[0])
    make_arg_parser(parser)
    add_thinkcap_args(parser)
    parser.set_defaults(model=None)  # vLLM's default (a hub model) would hide "no model given"
    # vLLM's default 0 ("abort") leaves open SSE streams hanging on SIGTERM (docs/security.md):
    # drain in-flight requests for up to 30 s instead.
    parser.set_defaults(shutdown_timeout=30)
    if cpu:
        parser.set_defaults(enforce_eager=True)  # compiling for CPU costs minutes and gains little here
    return parser


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    # Unset flags stay out, so THINKCAP_* environment variables and the defaults apply.
    given = {k: getattr(args, k) for k in SERVER_KEYS if getattr(args, k) is not None}
    media = {k: getattr(args, k) for k in MEDIA_KEYS if getattr(args, k) is not None}
    if args.allowed_local_media_path:  # vLLM's own flag: the gate reads local files, vLLM never does
        media["allowed_local_media_path"] = args.allowed_local_media_path
    if args.allowed_media_domains:  # vLLM's flag too: the gate is the one fetching, so it enforces it
        media["allowed_media_domains"] = args.allowed_media_domains
    limits = {k: getattr(args, k) for k in LIMIT_KEYS if getattr(args, k) is not None}
    hint = parse_hint(args.budget_hint) if args.budget_hint is not None else _policy_hint(getattr(args, "model_tag", None) or args.model)
    if hint is not None:
        given["budget_hint"] = hint.template
    return ServerSettings(media=MediaLimits(**media), limits=RequestLimits(**limits), **given)


def _policy_hint(model: str | None) -> BudgetHint | None:
    """The hint a trained policy folder records: served as it was trained, nothing set by hand."""
    if not model or not Path(model).is_dir():
        return None
    recorded, hint = read_policy_hint(model)
    if recorded:
        shown = "off" if hint is None else repr(hint.template)
        print(f"thinkcap serve: budget hint {shown}, from {Path(model) / POLICY_FILE}", flush=True)
    return hint


def model_type(model: str) -> str | None:
    config = Path(model) / "config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("model_type")
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model).model_type
    except Exception:  # noqa: BLE001 - unknown models simply get no default parser
        return None


def open_thinking_template(model: str, trust_remote_code: bool) -> str | None:
    """The model's chat template ending the generation prompt with `<think>` (one decode step less
    before the first visible token; see vllm_adapter.chat_template), or None to keep the model's own
    (the processor then forces `<think>` as output token 0)."""
    from vllm_adapter.chat_template import TemplateError, model_chat_template, with_open_thinking

    template = model_chat_template(model, trust_remote_code)
    if template is None:
        return None
    try:
        return with_open_thinking(template)
    except TemplateError as e:
        print(f"thinkcap serve: keeping the model's chat template ({e}); <think> is forced as output token 0", flush=True)
        return None


def plugin_allowlist(environ: dict[str, str]) -> str:
    """VLLM_PLUGINS with thinkcap's endpoint plugin added. When unset, vLLM loads every plugin of
    the other groups, so name them all to keep that behaviour (the list switches vLLM to allowlisting)."""
    if "VLLM_PLUGINS" in environ:
        names = [n for n in environ["VLLM_PLUGINS"].split(",") if n]
    else:
        names = sorted({ep.name for group in PLUGIN_GROUPS for ep in entry_points(group=group)} - OPT_IN_PLUGINS)
    return ",".join(dict.fromkeys([*names, "thinkcap"]))


def prepare(args: argparse.Namespace, cpu: bool) -> argparse.Namespace:
    """Fill thinkcap's defaults into vLLM's namespace (model, processor, parser, settings)."""
    args.model = args.model_tag or args.model
    args.model_tag = None
    if args.model is None:
        from thinkcap.tiny_model import ensure_tiny_model

        args.model = str(ensure_tiny_model())
        if not args.served_model_name:  # a readable id instead of a cache path in clients and the demo
            args.served_model_name = [TINY_MODEL_NAME]
        print(f"thinkcap serve: no MODEL given, serving the tiny random-weight GLM-4.1V at {args.model}", flush=True)
    processors = list(args.logits_processors or [])
    args.logits_processors = [p for p in processors if p != PROCESSOR_FQCN] + [PROCESSOR_FQCN]
    if not args.reasoning_parser and model_type(args.model) in GLM41V_MODEL_TYPES:
        args.reasoning_parser = "glm41v"
        args.structured_outputs_config.reasoning_parser = "glm41v"
    opens = args.reasoning_parser == "glm41v" and args.chat_template is None
    if opens:
        args.chat_template = open_thinking_template(args.model, args.trust_remote_code)
    args.thinkcap = settings_from_args(args)
    args.thinkcap.prompt_opens_thinking = opens and args.chat_template is not None
    if FQCN_AUTH not in args.middleware:  # outermost: rewrites vLLM's 401s into OpenAI's error shape
        args.middleware = [*args.middleware, FQCN_AUTH]
    args.thinkcap_announce = True
    return args


def main(argv: list[str] | None = None) -> int:
    cpu = is_cpu_build()
    if cpu:
        for key, value in CPU_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
    prepare_engine_env()
    os.environ["VLLM_PLUGINS"] = plugin_allowlist(dict(os.environ))
    args = prepare(build_parser(cpu).parse_args(argv), cpu)

    from vllm.entrypoints.cli.serve import ServeSubcommand
    try:
        from vllm.entrypoints.common.cli_args import validate_parsed_serve_args  # vLLM >= 0.33
    except ImportError:
        from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args  # 0.32

    validate_parsed_serve_args(args)
    ServeSubcommand.cmd(args)
    return 0
