"""The budget controls (grace, message, truncate, answer_required, close_reason) in a real vLLM CPU
engine (tiny GLM-4.1V, greedy). Expected positions come from the model's own free stream, computed
independently of `ThinkState`; `replay` must then report the same positions and close reason."""

from __future__ import annotations

import gc

import pytest

from budget import BudgetParams, build_profile, replay
from tests.vllm_adapter.vllm_engine import generate, make_llm, sampling, think_prompt
from vllm_adapter.engine_env import processor_kwargs

pytestmark = pytest.mark.engine
DOT = 13  # '.' in the tiny vocabulary: a boundary token


@pytest.fixture(scope="module")
def llm(tiny_model_dir):
    engine = make_llm(tiny_model_dir, **processor_kwargs())
    yield engine
    del engine
    gc.collect()


@pytest.fixture(scope="module")
def profile(llm):
    return build_profile(llm.get_tokenizer(), model_type="glm4v")


@pytest.fixture(scope="module")
def prompt(llm):
    return think_prompt(llm, "What is 2 + 2?")


def no_close(profile, extra: dict[int, float] | None = None):
    """Keep the close tag (and EOS, which becomes it) out of the model's top-k (logit_bias runs
    before our processor), so the grace window ends only at a boundary or its limit."""
    return {profile.think_close_id: -100.0, **{e: -100.0 for e in profile.eos_token_ids}, **(extra or {})}


def expected_grace_close(profile, free: list[int], budget: int, grace: int) -> tuple[int, str]:
    """(output position of the forced `</think>`, reason) from the unbudgeted stream."""
    for pos, tok in enumerate(free):
        n = pos + 1  # thinking tokens once `tok` is emitted
        if n >= budget + grace:
            return n, "budget" if grace == 0 else "grace_limit"
        if n >= budget and tok in profile.boundary_ids:
            return n, "boundary"
    raise AssertionError("the free stream is too short")


def check(profile, prompt, out, params, at: int, reason: str, thinking: int | None = None) -> None:
    n = len(profile.closing_ids)
    assert tuple(out[at : at + n]) == profile.closing_ids, out
    state = replay(profile, params, prompt, out)
    assert state.close_reason == reason and state.num_thinking_tokens == (at if thinking is None else thinking)
    assert state.forced_positions[-n:] == list(range(at, at + n))


@pytest.mark.parametrize("bias, budget, grace, reason", [
    (0.0, 6, 0, "budget"), (0.0, 6, 5, "grace_limit"), (1.2, 12, 10, "boundary")])
def test_grace_closes_at_boundary_or_limit(llm, profile, prompt, bias, budget, grace, reason):
    biases = no_close(profile, {DOT: bias})
    free = generate(llm, [prompt], sampling(40, logit_bias=biases))[0]
    at, why = expected_grace_close(profile, free, budget, grace)
    assert why == reason  # the case tests what it says
    out = generate(llm, [prompt], sampling(40, logit_bias=biases, think_budget=budget, think_budget_grace=grace))[0]
    assert out[:at] == free[:at]
    check(profile, prompt, out, BudgetParams(think_budget=budget, grace=grace), at, reason)


def test_message_is_forced_inside_the_budget(llm, profile, prompt):
    msg = llm.get_tokenizer().encode(" Time to answer.", add_special_tokens=False)
    out = generate(llm, [prompt], sampling(40, think_budget=12, think_budget_message_ids=msg))[0]
    assert out[12 - len(msg) : 12] == msg
    check(profile, prompt, out, BudgetParams(think_budget=12, message_ids=tuple(msg)), 12, "budget")


def test_truncate_stops_at_the_budget(llm, profile, prompt):
    from vllm import SamplingParams

    free = generate(llm, [prompt], sampling(40))[0]
    params = SamplingParams(max_tokens=40, temperature=0.0, extra_args={"think_budget": 5, "think_budget_action": "truncate"})
    (res,) = llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)
    out = list(res.outputs[0].token_ids)
    assert out == free[:5] + [profile.stop_id] and res.outputs[0].finish_reason == "stop"
    state = replay(profile, BudgetParams(think_budget=5, action="truncate"), prompt, out)
    assert state.close_reason == "truncated" and state.forced_positions == [] and state.num_thinking_tokens == 5


@pytest.mark.parametrize("required", [True, False])
def test_eos_inside_the_thought_becomes_the_close_and_the_answer_is_not_empty(llm, profile, prompt, required):
    from vllm import SamplingParams

    eos = profile.stop_id
    params = SamplingParams(max_tokens=40, temperature=0.0, logit_bias={eos: 100.0},
                            extra_args={"think_budget": 20, "answer_required": required})
    out = list(llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)[0].outputs[0].token_ids)
    state = replay(profile, BudgetParams(think_budget=20, answer_required=required), prompt, out)
    if not required:
        assert out == [eos] and state.close_reason == "eos"
        return
    # EOS was the top choice: it became `</think>`; EOS is masked until one answer token is out.
    assert out[0] == profile.think_close_id and out[-1] == eos and len(out) >= 3, out
    assert state.close_reason == "model" and state.answer_seen and state.forced_positions == []


def test_mixed_controls_in_one_batch_match_their_solo_runs(llm, profile, prompt):
    msg = llm.get_tokenizer().encode(" Time to answer.", add_special_tokens=False)
    other = think_prompt(llm, "Count the dots.")
    cases = [
        (prompt, sampling(40, think_budget=6)),
        (prompt, sampling(40, logit_bias=no_close(profile), think_budget=6, think_budget_grace=5)),
        (prompt, sampling(40, logit_bias=no_close(profile, {DOT: 1.2}), think_budget=12, think_budget_grace=10)),
        (other, sampling(40, think_budget=9, think_budget_message_ids=msg, think_budget_grace=3)),
        (other, sampling(40)),
        (prompt, sampling(40, think_budget=4, think_budget_action="truncate")),
    ]
    solo = [generate(llm, [p], s)[0] for p, s in cases]
    together = generate(llm, [p for p, _ in cases], [s for _, s in cases])
    assert together == solo
