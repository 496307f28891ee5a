"""The V1 processor's bulk row ops (`vllm_adapter.row_ops`) against per-row references, fast, no engine."""

from __future__ import annotations

import pytest
import torch

from budget import BudgetParams, ThinkProfile
from budget.state import CLOSE_TOP_K
from vllm_adapter.budget_rows import BudgetRows
from vllm_adapter.row_ops import GraceLane, Redirect

OPEN, CLOSE, ANS, EOS1, EOS2 = 10, 11, 12, 0, 1
PROFILE = ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS1, EOS2}), answer_open_id=ANS,
                       boundary_ids=frozenset({24}))
B, V = 8, 64


def reference_redirect(logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
    out = logits.clone()
    for r in rows:
        out[r, CLOSE] = max(logits[r, CLOSE], logits[r, EOS1], logits[r, EOS2])
        out[r, EOS1] = out[r, EOS2] = float("-inf")
    return out


@pytest.mark.parametrize("contiguous", [True, False])
def test_redirect_moves_the_highest_eos_onto_the_close_tag_on_watched_rows_only(contiguous):
    torch.manual_seed(0)
    redirect = Redirect(PROFILE, "cpu")
    rows = [1, 4, 6]
    for _ in range(3):  # the cached index tensors are reused for the same list object
        base = torch.randn(B, V)
        logits = base.clone() if contiguous else torch.randn(V, B).t()
        if not contiguous:
            logits.copy_(base)
        expected = reference_redirect(logits, rows)
        redirect(logits, rows)
        assert logits.is_contiguous() is contiguous
        assert torch.equal(logits, expected)


def test_redirect_rebuilds_for_a_new_rows_list_even_at_a_recycled_address():
    """The cache is keyed on the list object, not its id(): a freed list's address comes back on
    the next list of the same size (CPython), and an id-keyed cache then redirects the wrong rows
    (seen as a rare V1/V2 mismatch in test_processor_v2)."""
    recycled = 0
    for step in range(20):  # the hazard is real here: nothing holds the list, its id comes back
        before = id([step])
        recycled += id([step + 1]) == before
    assert recycled
    redirect = Redirect(PROFILE, "cpu")
    for step in range(20):
        rows = [step % B]  # a new list object each step, as `BudgetRows` hands out on a change
        logits = torch.randn(B, V)
        expected = reference_redirect(logits, rows)
        redirect(logits, rows)
        assert torch.equal(logits, expected), step
        del rows


def rank_of_close(row: torch.Tensor) -> int:
    return int((row > row[CLOSE]).sum())


@pytest.mark.parametrize("contiguous", [True, False])
def test_grace_lane_closes_rows_whose_close_tag_ranks_in_the_top_k_and_masks_the_rest(contiguous):
    rows = BudgetRows(PROFILE)
    outputs = {i: [20] * 5 for i in range(B)}  # 5 thinking tokens each: budget 4 spent, grace 10 left
    for i in range(B):
        rows.add(i, BudgetParams(think_budget=4, grace=10, answer_required=i % 2 == 0), [OPEN], outputs[i])
    plan = rows.step()
    assert plan.grace == list(range(B)) and not plan.forced
    torch.manual_seed(1)
    logits = torch.randn(B, V) if contiguous else torch.randn(V, B).t()
    logits[:, CLOSE] = -10.0
    logits[2, CLOSE] = 10.0  # the top choice
    logits[5, CLOSE] = logits[5].topk(CLOSE_TOP_K).values[-1]  # exactly the k-th: ties rank by strict >
    ranks = {i: rank_of_close(logits[i]) for i in range(B)}
    before = logits.clone()
    GraceLane(PROFILE, "cpu")(logits, plan, rows)
    closing = {i for i, r in ranks.items() if r < CLOSE_TOP_K}
    assert closing == {2, 5}
    assert sorted(plan.forced) == [(2, CLOSE), (5, CLOSE)]
    masked = {(r, t) for r, t in plan.masked}  # rows that close leave the masking to the plan's writer
    for i in range(B):
        expect = {CLOSE, EOS1, EOS2} if i % 2 == 0 else {CLOSE}  # EOS stays open without answer_required
        if i in closing:
            assert not {t for r, t in masked if r == i} and torch.equal(logits[i], before[i])
        elif masked:  # a step with a close: the others go through the plan
            assert {t for r, t in masked if r == i} == expect
        else:
            assert {int(t) for t in torch.nonzero(logits[i] == float("-inf")).flatten()} == expect
    # next step: the closing rows continue their closing sequence, the others stay in the lane
    for i in range(B):
        outputs[i].append(CLOSE if i in closing else 21)
    plan = rows.step()
    assert sorted(plan.forced) == [(2, ANS), (5, ANS)] and plan.grace == [0, 1, 3, 4, 6, 7]


def test_grace_lane_masks_in_one_store_when_no_row_closes():
    rows = BudgetRows(PROFILE)
    for i in range(B):
        rows.add(i, BudgetParams(think_budget=0, grace=3), [OPEN], [])
    plan = rows.step()
    logits = torch.zeros(B, V)
    logits[:, 30:40] = 1.0  # ten ids above the close tag everywhere
    GraceLane(PROFILE, "cpu")(logits, plan, rows)
    assert not plan.forced and not plan.masked
    assert torch.isinf(logits[:, [CLOSE, EOS1, EOS2]]).all() and torch.isfinite(logits[:, 2:CLOSE]).all()


@pytest.mark.parametrize("seed", range(5))
def test_the_probe_shortcut_is_exact_whatever_the_later_logits(seed):
    """The probes come from earlier logits; later steps' logits share nothing with them (random
    here), yet the rows found must be exactly those whose close tag ranks in the top k."""
    gen = torch.Generator().manual_seed(seed)
    rows = BudgetRows(PROFILE)
    for i in range(B):
        rows.add(i, BudgetParams(think_budget=0, grace=50), [OPEN], [])
    plan = rows.step()
    lane = GraceLane(PROFILE, "cpu")
    lane._rebuild(plan, V)
    for _ in range(40):
        logits = torch.randn(B, V, generator=gen)
        boost = torch.rand(B, generator=gen) < 0.3  # some rows near the top
        logits[boost, CLOSE] += 2.5
        expected = [i for i in range(B) if rank_of_close(logits[i]) < CLOSE_TOP_K]
        assert sorted(lane._close_in_top_k(logits)) == expected


def test_probe_ids_outlive_a_lane_change_and_stay_exact():
    """Rows keep their probe ids while others enter or leave the lane (choosing them is a pass over
    the row's vocabulary: a real vocabulary's cost); only rows their probes cannot clear choose anew."""
    gen = torch.Generator().manual_seed(7)
    rows = BudgetRows(PROFILE)
    for i in range(B):
        rows.add(i, BudgetParams(think_budget=0, grace=50), [OPEN], [])
    lane = GraceLane(PROFILE, "cpu")
    plan = rows.step()
    logits = torch.zeros(B, V)
    logits[:, 30:40] = 1.0  # ten ids above the close tag in every row
    lane(logits, plan, rows)
    kept = {row: ids for row, ids in zip(lane._lane, lane._probes)}
    assert set(lane._probes.flatten().tolist()) <= set(range(30, 40))
    rows.remove(3)  # the lane changes: new index tensors, the same probe ids
    for out in rows._by_index.values():
        out.output.append(21)
    plan = rows.step()
    assert 3 not in plan.grace
    lane(logits, plan, rows)
    assert all(torch.equal(ids, kept[row]) for row, ids in zip(lane._lane, lane._probes))
    for _ in range(20):  # random steps: exact, and new probes only when some row was unsure
        logits = torch.randn(B, V, generator=gen)
        logits[torch.rand(B, generator=gen) < 0.3, CLOSE] += 2.5
        expected = [plan.grace.index(i) for i in plan.grace if rank_of_close(logits[i]) < CLOSE_TOP_K]
        assert sorted(lane._close_in_top_k(logits)) == expected
