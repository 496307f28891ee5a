"""`vllm_adapter.engine_env`: the V1-runner choice and the processor listing, checked against vLLM's
own loader functions (no engine start needed; the engine tests build real ones)."""

from __future__ import annotations

import pytest

from vllm_adapter.engine_env import V2_RUNNER_ENV, entry_point_installed, prepare_engine_env, processor_kwargs


def test_prepare_engine_env_selects_the_v1_runner():
    env: dict[str, str] = {}
    prepare_engine_env(env)
    assert env == {V2_RUNNER_ENV: "0"}
    env = {V2_RUNNER_ENV: "0"}
    prepare_engine_env(env)
    assert env == {V2_RUNNER_ENV: "0"}


def test_prepare_engine_env_keeps_an_explicit_runner_choice():
    env = {V2_RUNNER_ENV: "1"}
    prepare_engine_env(env)
    assert env == {V2_RUNNER_ENV: "1"}  # V2: budgets enforced by processor_v2
    with pytest.raises(RuntimeError, match="set 1 .* or 0"):
        prepare_engine_env({V2_RUNNER_ENV: "yes"})


def test_v2_loaders_build_the_v2_path_once_per_engine(tiny_model_dir):
    """vLLM 0.32's V2 loader refuses V1-only classes in the entry-point group (which would stop
    every V2 engine in the environment). Through vLLM's own V2 loader and admission validator,
    with the real tiny model: the entry point plus the listed class build two V2 instances, one
    enforces, the other stays idle, and a bad budget is refused at admission."""
    from vllm import SamplingParams
    from vllm.engine.arg_utils import EngineArgs
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.worker.gpu.sample.logits_processor import (build_custom_logits_processors,
                                                            build_custom_logits_processors_params_validator)
    from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs_plugins

    from tests.vllm_adapter.runner_sim import cpu_request_state
    from vllm_adapter.processor import ThinkBudgetLogitsProcessor
    from vllm_adapter.processor_v2 import ThinkBudgetV2Processor

    assert entry_point_installed()
    assert _load_v2_logitsprocs_plugins() == [ThinkBudgetLogitsProcessor]
    config = EngineArgs(model=str(tiny_model_dir), enforce_eager=True, max_model_len=512).create_engine_config()
    rs = cpu_request_state(4, 512, 1)
    procs = build_custom_logits_processors(config, rs, False, processor_kwargs()["logits_processors"])
    assert [type(p) for p in procs] == [ThinkBudgetV2Processor] * 2
    assert [p.owner for p in procs] == [True, False] and procs[0].slots is not None
    assert procs[0].add_request(0, SamplingParams(extra_args={"think_budget": 3})) is True
    assert procs[1].add_request(0, SamplingParams(extra_args={"think_budget": 3})) is False
    validate = build_custom_logits_processors_params_validator(processor_kwargs()["logits_processors"])
    validate(SamplingParams(extra_args={"think_budget": 3}))
    with pytest.raises(VLLMValidationError, match="think_budget must be >= 0"):
        validate(SamplingParams(extra_args={"think_budget": -3}))


def test_listing_the_processor_next_to_the_entry_point_yields_two_classes():
    """vLLM concatenates entry points and `logits_processors=` without de-duplication, which is
    why the processor itself makes sure only one instance per engine works."""
    from vllm.v1.sample.logits_processor import _load_custom_logitsprocs

    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    loaded = _load_custom_logitsprocs(processor_kwargs()["logits_processors"])
    assert loaded == [ThinkBudgetLogitsProcessor, ThinkBudgetLogitsProcessor]
