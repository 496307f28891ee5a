"""Parity with vLLM's built-in thinking budget (`SamplingParams.thinking_token_budget` + a
reasoning config forcing `</think><answer>`), under greedy decoding, in one engine.

The engine is built like a plain-vLLM user would: no `logits_processors=`, so our processor
comes only from the package's entry point, which this module also checks.
"""

from __future__ import annotations

import gc

import pytest

from budget import BudgetParams, build_profile, replay
from tests.vllm_adapter.vllm_engine import budget_processors, generate, make_llm, sampling, think_prompt

pytestmark = pytest.mark.engine

BUDGETS = [0, 1, 2, 5, 13, 20, 33]


@pytest.fixture(scope="module")
def llm(tiny_model_dir):
    from vllm.config import ReasoningConfig

    reasoning = ReasoningConfig(reasoning_start_str="<think>", reasoning_end_str="</think><answer>")
    engine = make_llm(tiny_model_dir, reasoning_config=reasoning)
    yield engine
    del engine
    gc.collect()


@pytest.fixture(scope="module")
def prompts(llm):
    return [think_prompt(llm, "What is 2 + 2?"), think_prompt(llm, "Count the apples in the picture.")]


def builtin(max_tokens: int, budget: int):
    params = sampling(max_tokens)
    params.thinking_token_budget = budget
    return params


def test_entry_point_alone_installs_one_owning_processor(llm):
    assert llm.llm_engine.vllm_config.model_config.logits_processors is None
    (proc,) = budget_processors(llm)
    assert proc.owner and proc.rows is not None


@pytest.mark.parametrize("which", [0, 1])
def test_forced_positions_equal_the_builtin(llm, prompts, which):
    prompt = prompts[which]
    profile = build_profile(llm.get_tokenizer(), model_type="glm4v")
    # Both kinds of rows in one batch, so they also share every engine step.
    params = [sampling(45, think_budget=b) for b in BUDGETS] + [builtin(45, b) for b in BUDGETS]
    outs = generate(llm, [prompt] * len(params), params)
    ours, theirs = outs[: len(BUDGETS)], outs[len(BUDGETS) :]
    n_forced = 0
    for budget, a, b in zip(BUDGETS, ours, theirs):
        params_b = BudgetParams(think_budget=budget)
        expected = replay(profile, params_b, prompt, a)
        assert replay(profile, params_b, prompt, b).forced_positions == expected.forced_positions
        assert a == b  # same forced positions under greedy decoding: identical responses
        if expected.answer_forced:
            assert expected.forced_positions[0] == budget
            n_forced += 1
    assert n_forced >= 5  # most budgets really ran out within max_tokens
