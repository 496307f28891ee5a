"""`BudgetRows` (the vLLM processor's sparse bookkeeping) against a naive reference, fast, no engine.

A simulated persistent batch churns like vLLM's: requests leave (removed), join into freed slots
(added), the batch is condensed (one-way moves) and reordered (swaps), and some rows get no token
in a step (chunked prefill). The reference steps one `ThinkState` per request on every token; the
sleeping/catch-up bookkeeping must decide exactly the same forcing and masking at every step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from budget import BudgetParams, ThinkProfile, ThinkState
from vllm_adapter.budget_rows import BudgetRows, StepPlan

OPEN, CLOSE, ANS, EOS, WAIT = 10, 11, 12, 0, 50
BOUNDARY = 24  # a sentence end: closes a row inside its grace window
GLM = ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS}), answer_open_id=ANS, boundary_ids=frozenset({BOUNDARY}))


@dataclass
class Req:
    params: BudgetParams | None
    prompt: list[int]
    rng: random.Random
    output: list[int] = field(default_factory=list)
    ref: ThinkState | None = None

    def __post_init__(self) -> None:
        if self.params is not None:
            self.ref = ThinkState(GLM, self.params, self.prompt)

    def propose(self) -> tuple[int, bool]:
        """The model's own next choice (mostly text, sometimes a tag or EOS), and whether the close
        tag is among its top k (what the grace window asks)."""
        tok = self.rng.choice([20, 21, 22, 23, 24, 25, OPEN, CLOSE, ANS] + [EOS] * (self.rng.random() < 0.05))
        return tok, self.rng.random() < 0.1


def random_params(rng: random.Random) -> BudgetParams | None:
    kind = rng.random()
    if kind < 0.3:
        return None
    budget = rng.choice([None, 0, 1, 2, 5, 9, 20])
    min_think = 0 if rng.random() < 0.7 else rng.randint(1, 6)
    if budget is not None:
        min_think = min(min_think, budget)
    if budget is None and not min_think:
        budget = rng.randint(0, 12)
    cont = (WAIT, WAIT + 1) if rng.random() < 0.5 else ()
    trans = (60, 61) if rng.random() < 0.3 else ()
    grace = rng.choice([0, 0, 1, 4, 12])
    return BudgetParams(think_budget=budget, min_think_tokens=min_think, continuation_ids=cont, message_ids=trans,
                        grace=grace, answer_required=rng.random() < 0.8)


def reference_decision(req: Req, proposed: int, close_in_top: bool) -> tuple[int | None, frozenset[int]]:
    """What the HF adapter would do for this row: (forced id, masked ids)."""
    state = req.ref
    if state is None or state.finished:
        return None, frozenset()
    forced = state.forced_token()
    if forced is not None:
        return forced, frozenset()
    if state.in_grace and close_in_top:
        return state.request_close(), frozenset()
    banned = state.suppressed_ids()
    if banned and proposed in banned:
        forced = state.request_continuation()
        if forced is not None:
            return forced, frozenset()
    return None, banned


def redirects(req: Req) -> bool:
    """Whether the adapter must move this row's EOS onto the close tag (answer_required)."""
    return req.ref is not None and req.ref.redirects_eos


def decisions(plan: StepPlan) -> dict[int, tuple[int | None, frozenset[int]]]:
    out: dict[int, tuple[int | None, set[int]]] = {}
    for row, tok in plan.forced:
        out[row] = (tok, set())
    for row, tok in plan.masked:
        out.setdefault(row, (None, set()))[1].add(tok)
    return {row: (f, frozenset(m)) for row, (f, m) in out.items()}


def churn(rng: random.Random, rows: BudgetRows, batch: list[Req | None]) -> None:
    """One step's batch changes, reported to `rows` in vLLM's order: removed, added, moved."""
    removed = [i for i, r in enumerate(batch) if r is not None and rng.random() < 0.08]
    for i in removed:
        batch[i] = None
        rows.remove(i)
    for _ in range(rng.choice([0, 0, 1, 2])):
        req = Req(random_params(rng), [1, 2, OPEN] if rng.random() < 0.8 else [1, 2], random.Random(rng.random()))
        slot = batch.index(None) if None in batch else len(batch)
        batch.append(None) if slot == len(batch) else None
        batch[slot] = req
        if req.params is not None:
            rows.add(slot, req.params, req.prompt, req.output)
        else:
            rows.remove(slot)
    while None in batch:  # condense: the last request moves down into the lowest hole
        hole = batch.index(None)
        last = max((i for i, r in enumerate(batch) if r is not None), default=-1)
        if last < hole:
            del batch[hole:]
            break
        batch[hole], batch[last] = batch[last], None
        rows.move(last, hole, swap=False)
    if len(batch) > 1 and rng.random() < 0.2:
        a, b = rng.sample(range(len(batch)), 2)
        batch[a], batch[b] = batch[b], batch[a]
        rows.move(a, b, swap=True)


@pytest.mark.parametrize("seed", range(30))
def test_sleeping_rows_decide_exactly_like_a_per_token_reference(seed):
    rng = random.Random(seed)
    rows = BudgetRows(GLM)
    batch: list[Req | None] = []
    for _ in range(300):
        churn(rng, rows, batch)
        plan = rows.step()
        proposals = [req.propose() for req in batch]
        for row in plan.ask_top:
            rows.top_choice(row, proposals[row.index][0], plan)
        # the grace lane as the processor runs it: rows whose close tag ranks in the top k close
        assert len(plan.grace_masked) == len(set(plan.grace_masked)) and {r for r, _ in plan.grace_masked} <= set(plan.grace)
        closing = {i for i in plan.grace if proposals[i][1]}
        for i in sorted(closing):
            rows.close_now(i, plan)
        plan.masked.extend(pair for pair in plan.grace_masked if pair[0] not in closing)
        got = decisions(plan)
        assert set(plan.redirect) == {i for i, req in enumerate(batch) if redirects(req)}, seed
        for i, req in enumerate(batch):
            redirected = redirects(req)  # before the reference decides (a grace close changes it)
            forced, masked = reference_decision(req, *proposals[i])
            assert got.get(i, (None, frozenset())) == (forced, masked), (seed, i, req.params)
            if rng.random() < 0.1:
                continue  # no token for this row this step (e.g. a prefill chunk)
            proposed = CLOSE if redirected and proposals[i][0] == EOS else proposals[i][0]
            tok = forced if forced is not None else (25 if proposed in masked else proposed)
            req.output.append(tok)
            if req.ref is not None:
                req.ref.advance(tok)
    assert len(rows) <= sum(r is not None and r.params is not None for r in batch)


def test_unbudgeted_rows_are_never_stored_and_finished_rows_are_dropped():
    rows = BudgetRows(GLM)
    rows.add(0, BudgetParams(think_budget=1), [OPEN], out := [])
    plan = rows.step()  # budget 1: nothing owed at the first token but the EOS redirect
    assert len(rows) == 1 and (plan.forced, plan.masked, plan.redirect) == ([], [], [0])
    out.append(20)
    plan = rows.step()
    assert plan.forced == [(0, CLOSE)] and plan.redirect == []
    out.append(CLOSE)
    assert rows.step().forced == [(0, ANS)]
    out.append(ANS)
    assert rows.step().masked == [(0, EOS)]  # the first answer token may not be EOS
    out.append(30)
    assert not rows.step() and len(rows) == 0  # answer phase: forgotten
    rows.add(1, BudgetParams(think_budget=1, answer_required=False), [OPEN], [])
    assert not rows.step()  # nothing owed at all without answer_required


def test_placeholder_ids_disable_the_row_instead_of_guessing(caplog):
    rows = BudgetRows(GLM)
    rows.add(3, BudgetParams(think_budget=0), [OPEN], out := [])
    assert rows.step().forced == [(3, CLOSE)]
    out.append(-1)  # what vLLM's async scheduling leaves when it does not repair output ids
    assert not rows.step() and len(rows) == 0
    assert "placeholder output ids" in caplog.text
