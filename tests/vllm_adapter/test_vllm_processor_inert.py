"""A model without think tokens: the processor (entry point + listed) stays inert and a request
asking for a budget gets a clear error while the engine keeps serving."""

from __future__ import annotations

import gc
import json
import logging
import shutil
from pathlib import Path

import pytest

from vllm_adapter.engine_env import processor_kwargs
from tests.vllm_adapter.vllm_engine import budget_processors, generate, make_llm, sampling

pytestmark = pytest.mark.engine


def without_think_tokens(src: Path, dst: Path) -> Path:
    """The tiny model with `<think>`/`</think>` renamed, so its tokenizer cannot think."""
    shutil.copytree(src, dst)
    path = dst / "tokenizer.json"
    tok = json.loads(path.read_text())
    for added in tok["added_tokens"]:
        added["content"] = added["content"].replace("think>", "reason>")
    path.write_text(json.dumps(tok))
    return dst


@pytest.fixture(scope="module")
def llm(tiny_model_dir, tmp_path_factory):
    engine = make_llm(without_think_tokens(tiny_model_dir, tmp_path_factory.mktemp("nothink") / "m"), **processor_kwargs())
    yield engine
    del engine
    gc.collect()


@pytest.fixture(scope="module")
def prompt(llm):
    return llm.get_tokenizer().encode("<reason> Let us count", add_special_tokens=False)


def test_every_instance_is_inert(llm):
    procs = budget_processors(llm)
    assert len(procs) == 2 and all(p.rows is None for p in procs)
    assert sum(p.owner for p in procs) == 1


def test_budget_request_gets_a_clear_error_and_engine_keeps_serving(llm, prompt):
    from vllm.exceptions import VLLMValidationError

    (plain,) = generate(llm, [prompt], sampling(12))
    with pytest.raises(VLLMValidationError, match="no <think>/</think> tokens"):
        generate(llm, [prompt], sampling(12, think_budget=3))
    assert generate(llm, [prompt], sampling(12)) == [plain]


def test_budget_reaching_the_engine_anyway_is_ignored_with_a_warning(llm, prompt, caplog):
    """With vLLM's front end in another process the check above cannot run; the engine side
    must then serve the request unbudgeted instead of failing."""
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    (owner,) = [p for p in budget_processors(llm) if p.owner]
    params = SamplingParams(max_tokens=4, extra_args={"think_budget": 1})
    with caplog.at_level(logging.WARNING, logger="vllm_adapter.processor"):
        owner.update_state(BatchUpdate(batch_size=1, removed=[], added=[(0, params, prompt, [])], moved=[]))
    assert owner.rows is None and "think_budget ignored" in caplog.text
