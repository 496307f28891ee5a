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


def test_prepare_engine_env_refuses_an_explicit_v2_runner():
    with pytest.raises(RuntimeError, match="V2 model runner, under which the think-budget"):
        prepare_engine_env({V2_RUNNER_ENV: "1"})


def test_v2_loader_accepts_the_class_and_it_stays_inert_there(tiny_model_dir, caplog):
    """vLLM 0.32's V2 loader refuses V1-only classes in the entry-point group, which would stop
    every V2 engine in the environment; ours passes that check and is inert under V2."""
    import torch
    from vllm import SamplingParams
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs_plugins

    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    assert entry_point_installed()
    assert _load_v2_logitsprocs_plugins() == [ThinkBudgetLogitsProcessor]
    config = EngineArgs(model=str(tiny_model_dir), enforce_eager=True, max_model_len=512).create_engine_config()
    v2 = ThinkBudgetLogitsProcessor(config, object())  # the V2 runner's (vllm_config, req_states)
    assert not v2.owner and v2.rows is None
    assert v2.add_request(0, SamplingParams(extra_args={"think_budget": 3})) is False
    assert "VLLM_USE_V2_MODEL_RUNNER=0" in caplog.text
    logits = torch.zeros(2, 8)  # [B, V]
    assert v2.apply(logits, ctx=object()) is logits and not logits.any()


def test_listing_the_processor_next_to_the_entry_point_yields_two_classes():
    """vLLM concatenates entry points and `logits_processors=` without de-duplication, which is
    why the processor itself makes sure only one instance per engine works."""
    from vllm.v1.sample.logits_processor import _load_custom_logitsprocs

    from vllm_adapter.processor import ThinkBudgetLogitsProcessor

    loaded = _load_custom_logitsprocs(processor_kwargs()["logits_processors"])
    assert loaded == [ThinkBudgetLogitsProcessor, ThinkBudgetLogitsProcessor]
