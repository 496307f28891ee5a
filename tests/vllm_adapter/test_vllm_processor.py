"""The think-budget processor inside a real vLLM CPU engine (tiny GLM-4.1V, greedy decoding).

The engine is built the way the server builds it, `prepare_engine_env()` + `**processor_kwargs()`,
with the package's entry point installed as well. Expected positions come from `budget.replay`.
"""

from __future__ import annotations

import gc
import os

import pytest

from budget import BudgetParams, ThinkState, build_profile, replay
from vllm_adapter.engine_env import V2_RUNNER_ENV, entry_point_installed, processor_kwargs
from tests.vllm_adapter.vllm_engine import budget_processors, generate, make_llm, recorded_updates, sampling, think_prompt

pytestmark = pytest.mark.engine


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


def assert_forced_at(profile, prompt, out: list[int], budget: int) -> None:
    """The closing sequence sits at exactly [budget, budget + len(closing)) and was forced there."""
    n = len(profile.closing_ids)
    assert tuple(out[budget : budget + n]) == profile.closing_ids, out
    state = replay(profile, BudgetParams(think_budget=budget), prompt, out)
    assert state.forced_positions == list(range(budget, budget + n))
    assert state.num_thinking_tokens == budget and state.answer_forced


def force_position(profile, prompt, budget: int | None, free: list[int]) -> int | None:
    """Where the budget must bite in the model's unbudgeted stream `free` (None: never, e.g. the
    model ended or closed thinking first), by stepping the core state over it."""
    state = ThinkState(profile, BudgetParams(think_budget=budget), prompt)
    for pos, tok in enumerate(free):
        if state.forced_token() is not None:
            return pos
        state.advance(tok)
    return None


def test_v1_runner_and_exactly_one_owning_instance(llm):
    assert os.environ[V2_RUNNER_ENV] == "0"
    assert llm.llm_engine.vllm_config.use_v2_model_runner is False
    assert entry_point_installed()  # so the engine really holds the entry-point instance too
    procs = budget_processors(llm)
    assert len(procs) == 2  # entry point + logits_processors=[...]: vLLM does not de-duplicate
    owners = [p for p in procs if p.owner]
    assert len(owners) == 1 and owners[0].rows is not None
    assert all(p.rows is None for p in procs if not p.owner)  # the other one does nothing


def test_batch_of_budgets_forces_at_exact_positions(llm, profile, prompt):
    (free,) = generate(llm, [prompt], sampling())  # no budget anywhere: the model's own choice
    assert profile.think_close_id not in free  # the tiny model never closes by itself here
    budgets = [0, 1, 5, 20, None]
    outs = generate(llm, [prompt] * len(budgets), [sampling(think_budget=b) for b in budgets])
    for budget, out in zip(budgets, outs):
        if budget is None:
            assert out == free  # an unbudgeted row in a budgeted batch equals a solo plain run
        else:
            assert_forced_at(profile, prompt, out, budget)
            assert out[:budget] == free[:budget]  # nothing touched before the budget ran out


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"think_budget": -5}, "think_budget must be >= 0"),
        ({"think_budget": "ten"}, "think_budget must be an integer"),
        ({"think_budget": True}, "think_budget must be an integer"),
        ({"think_budget": 3, "min_think_tokens": 9}, "cannot exceed the think budget"),
        ({"think_budget": 3, "think_budget_message_ids": [10**6]}, "outside this model's vocabulary"),
    ],
)
def test_bad_budget_is_rejected_and_engine_keeps_serving(llm, profile, prompt, extra, message):
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError, match=message):
        generate(llm, [prompt], sampling(**extra))
    (out,) = generate(llm, [prompt], sampling(think_budget=2))
    assert_forced_at(profile, prompt, out, 2)


def test_close_tag_in_forced_text_is_rejected(llm, profile, prompt):
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError, match="must not contain the think-close"):
        generate(llm, [prompt], sampling(think_budget=4, think_budget_message_ids=[profile.think_close_id]))


def run_staggered(llm, jobs: list[tuple[int, list[int], object]]) -> dict[str, list[int]]:
    """Add job i when the engine has stepped `jobs[i][0]` times: requests join a running batch."""
    engine, outs, steps = llm.llm_engine, {}, 0
    pending = sorted(enumerate(jobs), key=lambda j: j[1][0])
    while pending or engine.has_unfinished_requests():
        while pending and pending[0][1][0] <= steps:
            i, (_, prompt, params) = pending.pop(0)
            engine.add_request(f"job{i}", {"prompt_token_ids": prompt}, params)
        for out in engine.step():
            if out.finished:
                outs[out.request_id] = list(out.outputs[0].token_ids)
        steps += 1
    return outs


def test_rows_joining_and_leaving_mid_batch_force_exactly(llm, profile, prompt):
    prompts = [prompt, think_prompt(llm, "Describe the image."), think_prompt(llm, "Count to ten.")]
    # (join step, prompt, budget, max_tokens): short rows leave early from low batch indices, so
    # vLLM condenses the batch (moves) while later rows join into the freed slots.
    plan = [
        (0, 0, 3, 6), (0, 1, None, 5), (0, 2, 12, 30), (0, 0, 25, 40), (0, 1, 0, 4),
        (4, 2, 2, 8), (4, 0, None, 20), (7, 1, 9, 25), (9, 2, 30, 12), (12, 0, 1, 6),
    ]  # fmt: skip
    # answer_required off: compared with unbudgeted solo runs, whose EOS nothing turns into `</think>`
    # (the redirect under churn: test_budget_rows and test_controls_engine's mixed batch).
    jobs = [(at, prompts[p], sampling(max_tokens, think_budget=b, answer_required=False))
            for at, p, b, max_tokens in plan]
    (owner,) = [p for p in budget_processors(llm) if p.owner]
    with recorded_updates(owner) as updates:
        outs = run_staggered(llm, jobs)
    assert any(u.moved for u in updates) and any(u.removed for u in updates)
    assert sum(len(u.added) for u in updates) == len(plan)
    forced = 0
    for i, (_, p, budget, max_tokens) in enumerate(plan):
        out = outs[f"job{i}"]
        assert len(out) == max_tokens
        (solo,) = generate(llm, [prompts[p]], sampling(max_tokens))
        pos = force_position(profile, prompts[p], budget, solo)
        if pos is None:  # never ran out (or the model ended first): identical to an unbudgeted run
            assert out == solo
        else:
            assert pos == budget and out[:pos] == solo[:pos]
            assert_forced_at(profile, prompts[p], out, budget)
            forced += 1
    assert forced >= 4  # most rows really ran out mid-batch
    assert len(owner.rows) == 0  # every finished row was forgotten


def test_rows_are_forgotten_once_thinking_is_over(llm, profile, prompt):
    """Unbudgeted rows are never tracked, forced rows are dropped right after the closing."""
    engine = llm.llm_engine
    (owner,) = [p for p in budget_processors(llm) if p.owner]
    engine.add_request("plain", {"prompt_token_ids": prompt}, sampling(30))
    engine.add_request("budgeted", {"prompt_token_ids": prompt}, sampling(30, think_budget=2))
    tracked = []
    while engine.has_unfinished_requests():
        engine.step()
        tracked.append(len(owner.rows))
    assert max(tracked) == 1  # only the budgeted row
    assert tracked[5:] == [0] * len(tracked[5:])  # gone once `</think><answer>` was emitted


def test_min_think_tokens_suppresses_the_close_tag(llm, profile, prompt):
    close = profile.think_close_id
    push_close = {close: 100.0}  # make the model want to close thinking at every step
    (eager,) = generate(llm, [prompt], sampling(12, logit_bias=push_close))
    assert eager[0] == close  # without a minimum it closes at once
    (held,) = generate(llm, [prompt], sampling(12, logit_bias=push_close, min_think_tokens=5))
    assert close not in held[:5] and held[5] == close
    state = replay(profile, BudgetParams(min_think_tokens=5), prompt, held)
    assert state.num_thinking_tokens == 5 and not state.answer_forced


def test_min_think_continuation_is_forced_when_the_model_wants_to_stop(llm, profile, prompt):
    close = profile.think_close_id
    wait = llm.get_tokenizer().encode(" Wait,", add_special_tokens=False)
    assert len(wait) >= 2  # so the test also covers the continuation's forced tail
    extra = {"min_think_tokens": 5, "think_continuation_ids": wait, "think_budget": 20}
    (out,) = generate(llm, [prompt], sampling(16, logit_bias={close: 100.0}, **extra))
    params = BudgetParams(min_think_tokens=5, continuation_ids=tuple(wait), think_budget=20)
    repeats = -(-5 // len(wait))  # whole continuations until the minimum is met
    n = repeats * len(wait)
    assert out[:n] == wait * repeats and out[n] == close
    assert replay(profile, params, prompt, out).num_thinking_tokens == n
