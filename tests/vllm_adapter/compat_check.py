"""What of thinkcap's vLLM integration works on the installed vLLM, without an accelerator.

    python -m tests.vllm_adapter.compat_check            # the project's vLLM
    PYTHONPATH=/tmp/vllm-0.34.0 python -m tests.vllm_adapter.compat_check
        # another vLLM wheel unpacked with `pip install --no-deps --target /tmp/vllm-0.34.0 vllm==0.34.0`

Prints one line per check (ok / FAIL and why) and exits non-zero when any failed. The table in
docs/processor.md was made with it; the V2 interface tests (tests/vllm_adapter/test_processor_v2.py)
run under the same PYTHONPATH.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

CHECKS: list[tuple[str, Callable[[], str | None]]] = []
FQCN = "vllm_adapter.processor:ThinkBudgetLogitsProcessor"


def check(name: str):
    def register(fn):
        CHECKS.append((name, fn))
        return fn
    return register


@check("import vllm and vllm_adapter")
def _imports() -> str:
    import vllm

    import vllm_adapter.processor  # noqa: F401
    import vllm_adapter.processor_v2  # noqa: F401

    return vllm.__version__


@check("V1 loader (entry point + listed class)")
def _v1_loader() -> str:
    try:
        from vllm.v1.sample.logits_processor import _load_custom_logitsprocs
    except ImportError:
        return "n/a: this vLLM has no V1 model runner"
    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    assert _load_custom_logitsprocs([FQCN]) == [ThinkBudgetLogitsProcessor] * 2
    return "2 classes"


@check("V2 loader builds the V2 path, once per engine; admission refuses bad args")
def _v2_loader() -> str:
    from types import SimpleNamespace
    from unittest import mock

    import pytest
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.worker.gpu.sample.logits_processor import (build_custom_logits_processors,
                                                            build_custom_logits_processors_params_validator)

    from tests.vllm_adapter.runner_sim import GLM, cpu_request_state
    from vllm_adapter.processor_v2 import ThinkBudgetV2Processor

    config = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: 64, model="sim", hf_config=None))
    with mock.patch("vllm_adapter.processor_common.model_profile", return_value=GLM):
        procs = build_custom_logits_processors(config, cpu_request_state(2, 16, 1), False, [FQCN])
    assert [type(p) for p in procs] == [ThinkBudgetV2Processor] * 2 and [p.owner for p in procs] == [True, False]
    validate = build_custom_logits_processors_params_validator([FQCN])
    with pytest.raises(VLLMValidationError, match="think_budget must be >= 0"):
        validate(SamplingParams(extra_args={"think_budget": -3}))
    return "ok"


@check("general plugin registers the glm41v reasoning parser")
def _reasoning_parser() -> str:
    from vllm.reasoning import ReasoningParserManager

    from vllm_adapter.plugin import register

    register()
    cls = ReasoningParserManager.get_reasoning_parser("glm41v")
    return cls.__name__


@check("endpoint plugin attaches to vLLM's build_app")
def _endpoint_plugin() -> str:
    import os
    from unittest import mock

    from vllm.entrypoints.launchers.app import build_app
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser  # 0.32
    except ImportError:
        from vllm.entrypoints.common.cli_args import make_arg_parser  # 0.33, 0.34
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from serving.middleware import BudgetMiddleware

    from vllm.platforms import current_platform

    # A GPU wheel on a machine without a GPU infers no device: the app itself does not need one.
    device = mock.patch.object(type(current_platform), "device_type", current_platform.device_type or "cpu")
    with device, mock.patch.dict(os.environ, {"VLLM_PLUGINS": "thinkcap"}):
        import vllm.envs as envs

        if hasattr(envs, "disable_envs_cache"):
            envs.disable_envs_cache()
        args = make_arg_parser(FlexibleArgumentParser()).parse_args([])
        app = build_app(args, ("generate",))
    assert any(m.cls is BudgetMiddleware for m in app.user_middleware), app.user_middleware
    return "BudgetMiddleware in the app"


@check("every vLLM name serving/ (thinkcap serve) imports")
def _serving_imports() -> str:
    """Read from the source, so a new import is checked without editing this list. A name imported
    in `try:` with another place in `except ImportError:` (a move between vLLM versions) needs one
    of its places to work."""
    import ast
    import importlib
    from pathlib import Path

    def found(mod: str, name: str) -> bool:
        try:
            return hasattr(importlib.import_module(mod), name)
        except ImportError:
            return False

    def vllm_imports(nodes) -> list[tuple[str, str]]:
        return [(n.module, a.name) for node in nodes for n in ast.walk(node)
                if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "vllm" for a in n.names]

    places: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (file, name) -> modules tried
    for path in Path(__file__).resolve().parents[2].joinpath("serving").glob("*.py"):
        tree = ast.parse(path.read_text())
        fallback = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in node.handlers):
                alts = vllm_imports(node.body) + vllm_imports(node.handlers)
                for mod, name in alts:
                    places.setdefault((f"{path.name}:{node.lineno}", name), set()).add((mod, name))
                    fallback.add((mod, name))
        for mod, name in vllm_imports([tree]):
            if (mod, name) not in fallback:
                places.setdefault((mod, name), set()).add((mod, name))
    missing = [" or ".join(sorted(f"{m}.{n}" for m, n in alts)) for alts in places.values()
               if not any(found(m, n) for m, n in alts)]
    assert not missing, f"missing: {', '.join(sorted(missing))}"
    return f"{len(places)} names"


def main() -> int:
    failed = 0
    for name, fn in CHECKS:
        try:
            print(f"ok    {name}: {fn()}")
        except Exception as e:  # report every check, whatever breaks
            failed += 1
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=-2, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
