"""`serving.engine_args`: the V1-runner choice and the processor listing, checked against vLLM's
own loader functions (no engine start needed; the engine tests build real ones)."""

from __future__ import annotations

import pytest

from serving.engine_args import V2_RUNNER_ENV, entry_point_installed, prepare_engine_env, processor_kwargs


def test_prepare_engine_env_selects_the_v1_runner():
    env: dict[str, str] = {}
    prepare_engine_env(env)
    assert env == {V2_RUNNER_ENV: "0"}
    env = {V2_RUNNER_ENV: "0"}
    prepare_engine_env(env)
    assert env == {V2_RUNNER_ENV: "0"}


def test_prepare_engine_env_refuses_an_explicit_v2_runner():
    with pytest.raises(RuntimeError, match="V2 model runner, which cannot load the think-budget"):
        prepare_engine_env({V2_RUNNER_ENV: "1"})


def test_vllm_v2_loader_rejects_our_v1_processor():
    """Why the V1 runner: vLLM 0.32's V2 loader refuses V1-interface entry points outright."""
    from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs_plugins

    assert entry_point_installed()
    with pytest.raises(ValueError, match="V1-interface plugins are not supported by the V2 model runner"):
        _load_v2_logitsprocs_plugins()


def test_listing_the_processor_next_to_the_entry_point_yields_two_classes():
    """vLLM concatenates entry points and `logits_processors=` without de-duplication, which is
    why the processor itself makes sure only one instance per engine works."""
    from vllm.v1.sample.logits_processor import _load_custom_logitsprocs

    from serving.vllm_processor import ThinkBudgetLogitsProcessor

    loaded = _load_custom_logitsprocs(processor_kwargs()["logits_processors"])
    assert loaded == [ThinkBudgetLogitsProcessor, ThinkBudgetLogitsProcessor]
