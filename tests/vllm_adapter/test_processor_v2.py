"""The Model Runner V2 path of the processor at its interface, on CPU tensors, against the V1 path.

Each schedule runs the same requests through `V1Sim` (V1 persistent batch) and `V2Sim` (vLLM's
own V2 `RequestState`, slots recycled, rows reordered, chunked prefill, draft rows, preemption
and resume; see `runner_sim.py`), both with the real `ThinkBudgetLogitsProcessor` entry class.
Greedy sampling on fixed logits tables: every request must come out token for token the same,
with the same forced positions, and within its budget.
"""

from __future__ import annotations

import random
import weakref
from contextlib import contextmanager
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import params_from_args, replay, resolve_params
from vllm_adapter import processor_common
from tests.vllm_adapter.runner_sim import CLOSE, CPU, GLM, V, V1Sim, V2Sim, fake_config, random_request
from vllm_adapter.processor import ThinkBudgetLogitsProcessor
from vllm_adapter.processor_v2 import ThinkBudgetV2Processor

SCHEDULES = 60  # hypothesis examples of the differential test (each one a whole random schedule)


@contextmanager
def sim_profile():
    with mock.patch("vllm_adapter.processor_common.model_profile", return_value=GLM):
        yield


def run_both(seed: int, spec: int, n_reqs: int = 24, capacity: int = 6):
    rng = random.Random(seed)
    reqs = [random_request(rng, i) for i in range(n_reqs)]
    with sim_profile():
        v2 = V2Sim(ThinkBudgetLogitsProcessor, random.Random(seed + 1), capacity, spec)
        assert isinstance(v2.proc, ThinkBudgetV2Processor)  # the entry class dispatched to V2
        outs2, preempted = v2.run(reqs)
        v1 = V1Sim(ThinkBudgetLogitsProcessor(fake_config(), CPU, False), random.Random(seed + 2), capacity)
        outs1 = v1.run(reqs, preempted)
    return reqs, outs1, outs2, v2.stats


def check_equal(reqs, outs1, outs2) -> int:
    forced = 0
    for r in reqs:
        a, b = outs1[r.rid], outs2[r.rid]
        assert b.output == a.output, r
        assert b.forced == a.forced, r
        forced += len(a.forced)
        params = resolve_params(GLM, params_from_args(r.extra_args), r.prompt, r.max_tokens)
        if params is not None and params.think_budget is not None:
            grace = 0 if params.truncate else params.grace  # the grace window may run past the budget
            assert replay(GLM, params, r.prompt, a.output).num_thinking_tokens <= params.think_budget + grace, params
    return forced


@settings(max_examples=SCHEDULES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), spec=st.sampled_from([0, 1, 3]))
def test_v2_path_forces_exactly_what_v1_forces(seed, spec):
    check_equal(*run_both(seed, spec)[:3])


def test_schedules_exercise_what_they_claim():
    """Not vacuous: the fixed seeds force tokens, accept and reject drafts, preempt, chunk prefills."""
    totals = {"forced": 0, "draft_rows": 0, "accepted": 0, "preempted": 0, "partial_prefill": 0}
    for seed in range(6):
        reqs, o1, o2, stats = run_both(seed, spec=3)
        totals["forced"] += check_equal(reqs, o1, o2)
        for k in stats:
            totals[k] += stats[k]
    assert all(totals.values()), totals
    assert totals["accepted"] < totals["draft_rows"]  # some drafts were rejected


def test_draft_row_past_a_forced_close_keeps_it():
    """Row 0 forces `</think>`; a draft that disagrees can never be accepted, so the rows after it
    must force the same token rather than re-plan from the dead draft."""
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState
    from vllm import SamplingParams
    import numpy as np

    from tests.vllm_adapter.runner_sim import OPEN, cpu_request_state, flush

    rs = cpu_request_state(4, 32, 3)
    with sim_profile():
        proc = ThinkBudgetLogitsProcessor(fake_config(), LogitsProcRequestState.from_request_state(rs))
    rs.add_request("a", 3, [30, 31, OPEN, 20, 21], 0, 20)  # resumed: 2 thinking tokens already out
    slot = rs.req_id_to_index["a"]
    assert proc.add_request(slot, SamplingParams(max_tokens=20, extra_args={"think_budget": 2}))
    rs.prompt_len.copy_to_uva(), rs.prefill_len.copy_to_uva(), flush(rs.total_len), flush(rs.all_token_ids)
    idx = np.array([slot], dtype=np.int32)
    ctx = LogitsContext(torch.tensor([slot] * 3), torch.from_numpy(idx), idx, torch.tensor([0, 1, 2]),
                        torch.tensor([21, 22, 23]), torch.tensor([4, 5, 6]), np.array([7], dtype=np.int32))
    logits = proc.apply(torch.zeros(3, V), ctx)  # [3, V]
    assert [int(row.argmax()) for row in logits] == [CLOSE] * 3
    assert all(int(torch.isfinite(row).sum()) == 1 for row in logits)


def test_slot_reuse_resets_everything():
    from vllm import SamplingParams
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcRequestState

    from tests.vllm_adapter.runner_sim import cpu_request_state

    rs = cpu_request_state(2, 16, 1)
    with sim_profile():
        proc = ThinkBudgetLogitsProcessor(fake_config(), LogitsProcRequestState.from_request_state(rs))
    assert proc.add_request(1, SamplingParams(extra_args={"think_budget": 3})) is True
    assert proc.add_request(1, SamplingParams()) is False  # the next occupant has no budget
    assert 1 not in proc.slots and proc.slots.wake[1] == proc.slots.wake.max()


@pytest.mark.parametrize("args, message", [
    ({"think_budget": -3}, "think_budget must be >= 0"),
    ({"think_budget": 4, "think_continuation_ids": [CLOSE]}, "must not contain the think-close"),
    ({"think_budget": 4, "think_budget_message_ids": [V + 5]}, "outside this model's vocabulary"),
])
def test_validate_params_refuses_with_the_v1_messages(args, message):
    """Through vLLM's V2 admission validator, with a V2 instance owning the engine."""
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.worker.gpu.sample.logits_processor import (LogitsProcRequestState,
                                                            build_custom_logits_processors_params_validator)

    from tests.vllm_adapter.runner_sim import cpu_request_state

    # Its own owner registry: engines other tests left alive in this process would make the owner
    # ambiguous, and validate_params then (rightly) skips the per-model id checks.
    with sim_profile(), mock.patch.object(processor_common, "OWNERS", weakref.WeakValueDictionary()):
        proc = ThinkBudgetLogitsProcessor(fake_config(), LogitsProcRequestState.from_request_state(cpu_request_state(2, 16, 1)))
        validate = build_custom_logits_processors_params_validator(["vllm_adapter.processor:ThinkBudgetLogitsProcessor"])
        with pytest.raises(VLLMValidationError, match=message):
            validate(SamplingParams(extra_args=args))
        with pytest.raises(ValueError, match=message):
            ThinkBudgetV2Processor.validate_params(SamplingParams(extra_args=args))
    del proc


def test_watched_rows_stay_on_the_device():
    """`answer_required` rows that owe nothing are not visited by the host (no read-back): the
    device flag redirects EOS while thinking, follows the model's own `</think>`, then masks EOS
    until the answer starts, then lets go."""
    from vllm import SamplingParams
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState
    import numpy as np

    from tests.vllm_adapter.runner_sim import ANS, EOS, OPEN, cpu_request_state, flush

    rs = cpu_request_state(4, 32, 1)
    with sim_profile():
        proc = ThinkBudgetLogitsProcessor(fake_config(), LogitsProcRequestState.from_request_state(rs))
    rs.add_request("a", 2, [30, OPEN], 0, 20)
    rs.add_request("b", 2, [30, OPEN], 0, 20)  # no budget: never touched
    a, b = rs.req_id_to_index["a"], rs.req_id_to_index["b"]
    assert proc.add_request(a, SamplingParams(max_tokens=20, extra_args={"think_budget": 100}))
    assert not proc.add_request(b, SamplingParams(max_tokens=20))
    rs.prompt_len.copy_to_uva(), rs.prefill_len.copy_to_uva(), flush(rs.total_len), flush(rs.all_token_ids)
    idx = np.array([a, b], dtype=np.int32)
    visits = []
    plan = proc._plan
    proc._plan = lambda *args: visits.append(1) or plan(*args)

    def step(prev: int | None) -> torch.Tensor:
        if prev is not None:  # post_update commits the token sampled last step on both slots
            for s in (a, b):
                n = int(rs.total_len.gpu[s])
                rs.all_token_ids.gpu[s, n], rs.total_len.gpu[s] = prev, n + 1
        n = int(rs.total_len.gpu[a])
        t = torch.tensor(idx)
        ctx = LogitsContext(t, t, idx, torch.zeros(2, dtype=torch.int32), torch.zeros(2, dtype=torch.int32),
                            torch.full((2,), n - 1), np.full(2, n, dtype=np.int32))
        logits = torch.zeros(2, V)  # [2, V]
        logits[:, EOS] = 5.0  # the model wants to stop
        return proc.apply(logits, ctx)

    out = step(None)  # first visit: the host reads the prompt and sets the flag
    assert visits == [1]
    assert int(out[0].argmax()) == CLOSE and out[0, EOS] == float("-inf") and out[0, CLOSE] == 5.0
    assert int(out[1].argmax()) == EOS  # the unbudgeted row is untouched
    for tok in (40, 41, 42):
        out = step(tok)
        assert int(out[0].argmax()) == CLOSE and int(out[1].argmax()) == EOS
    out = step(CLOSE)  # the model closed thinking itself: no EOS before the answer starts
    assert out[0, EOS] == float("-inf") and out[0, CLOSE] == 0.0
    out = step(ANS)  # the answer-open tag is not an answer token yet
    assert out[0, EOS] == float("-inf")
    out = step(43)  # a visible answer token: free again
    assert int(out[0].argmax()) == EOS
    assert visits == [1]  # every later step stayed on the device
