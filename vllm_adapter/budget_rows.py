"""Sparse per-row budget bookkeeping for a batched engine, in pure Python (no torch, no vLLM).

The vLLM processor runs on every decode step of every request, so this keeps its cost close to
zero: rows without a budget are never stored; a budgeted row sleeps until the first step at which
it could owe something (`ThinkState.tokens_until_action`) and is then caught up on the tokens it
produced meanwhile, each token exactly once. Only rows in a forced sequence, under
`min_think_tokens` or at their first answer token ("hot" rows, few of them) are looked at every
step.

Rows inside their grace window form a lane checked in bulk: each step the adapter ranks the close
tag in all of them with one tensor op and masks it with one cached indexed store (`StepPlan.grace`,
`grace_masked`); only a row whose close tag ranks in the top k (`close_now`), whose last id is a
boundary, or that reaches the window's end is visited in Python, once.

Rows that think with `answer_required` are also "watched" (`ThinkState.redirects_eos`): their EOS
is moved onto the close tag every step (one tensor op for all of them, indices cached), and each
step reads only their last id, to wake one whose thinking just closed (its first answer token may
not be EOS).

Steps are counted, not tokens: a running row gains at most one token per step (vLLM builds no
custom processors under speculative decoding), so waking a row after k steps never misses the
step it owes. Rows that gained fewer tokens (chunked prefill, preemption) are put back to sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from budget import BudgetParams, Phase, ThinkProfile, ThinkState

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Row:
    """One budgeted request. `output` is the engine's live list of generated ids."""

    params: BudgetParams
    prompt_ids: Sequence[int]
    output: list[int]
    index: int
    state: ThinkState
    seen: int = 0  # output ids already fed to `state`
    due: int = 0  # step at which a sleeping row wakes up
    alive: bool = True


@dataclass(slots=True)
class StepPlan:
    """What the logits of one step must undergo; row indices are batch rows."""

    forced: list[tuple[int, int]] = field(default_factory=list)  # (row, id): the row becomes one-hot
    masked: list[tuple[int, int]] = field(default_factory=list)  # (row, id) set to -inf
    # min-think rows with a continuation: whether to force it depends on the row's top logit.
    ask_top: list[Row] = field(default_factory=list)
    redirect: list[int] = field(default_factory=list)  # rows whose EOS becomes the close tag
    # The grace lane: its batch rows (whether to close depends on the close tag's rank in each),
    # and the (row, id) pairs masked on those that do not close. Both are the same list objects
    # from step to step until the lane changes, so adapters can cache their index tensors.
    grace: list[int] = field(default_factory=list)
    grace_masked: list[tuple[int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.forced or self.masked or self.ask_top or self.grace or self.redirect)


class BudgetRows:
    """The budgeted rows of one engine's persistent batch, keyed by batch index."""

    def __init__(self, profile: ThinkProfile):
        self.profile = profile
        self.step_no = 0
        self._by_index: dict[int, Row] = {}
        self._hot: dict[Row, None] = {}  # insertion-ordered set
        self._sleeping: dict[int, list[Row]] = {}  # wake-up step -> rows
        # Watched rows -> whether their EOS is redirected now (thinking); rows before `<think>`
        # are watched for it to open.
        self._watch: dict[Row, bool] = {}
        self._wake_ids = frozenset({profile.think_open_id, profile.think_close_id})
        self._watch_index: list[int] | None = []  # their batch indices; None when stale
        # The grace lane, woken by a boundary (or the close tag / EOS) as its last id.
        self._grace: dict[Row, None] = {}
        self._grace_wake = profile.boundary_ids | {profile.think_close_id, *profile.eos_token_ids}
        self._grace_index: list[int] | None = []  # their batch indices; None when stale
        self._grace_masked: list[tuple[int, int]] = []
        self._warned_placeholders = False

    def __len__(self) -> int:
        return len(self._by_index)

    # ---- batch changes ------------------------------------------------------------------------
    def add(self, index: int, params: BudgetParams, prompt_ids: Sequence[int] | None, output: list[int]) -> None:
        """A request entered batch row `index` (replacing whatever was there). `output` may
        already hold tokens (a preempted request resuming); the first visit replays them."""
        self.remove(index)
        prompt = prompt_ids or ()
        state = ThinkState(self.profile, params, prompt)
        row = Row(params, prompt, output, index, state)
        self._by_index[index] = row
        self._hot[row] = None  # visit at the next step

    def remove(self, index: int) -> None:
        row = self._by_index.pop(index, None)
        if row is not None:
            self._forget(row)

    def move(self, src: int, dst: int, swap: bool) -> None:
        a = self._by_index.pop(src, None)
        b = self._by_index.pop(dst, None)
        if b is not None and not swap:
            self._forget(b)  # a one-way move overwrites dst
        if (a is not None and a in self._watch) or (b is not None and b in self._watch):
            self._watch_index = None
        if (a is not None and a in self._grace) or (b is not None and b in self._grace):
            self._grace_index = None
        if a is not None:
            a.index = dst
            self._by_index[dst] = a
        if b is not None and swap:
            b.index = src
            self._by_index[src] = b

    # ---- per step -----------------------------------------------------------------------------
    def step(self) -> StepPlan:
        """Advance the step counter and decide this step's forcing/masking."""
        self.step_no += 1
        plan = StepPlan()
        for row in self._sleeping.pop(self.step_no, ()):
            if row.alive and row.due == self.step_no:
                self._hot[row] = None
        if self._watch:
            wake = self._wake_ids
            for row in self._watch:
                output = row.output
                if output and output[-1] in wake:  # thinking opened or closed: re-plan the row
                    self._hot[row] = None
        if self._grace:
            wake = self._grace_wake
            for row in self._grace:
                output = row.output
                if len(output) > row.seen and output[-1] in wake:  # a boundary: close now
                    self._hot[row] = None
        for row in list(self._hot):
            self._visit(row, plan)
        if self._watch:
            if self._watch_index is None:
                self._watch_index = [row.index for row, thinking in self._watch.items() if thinking]
            plan.redirect = self._watch_index  # the same list object until the set changes
        if self._grace:
            if self._grace_index is None:
                self._grace_index = [row.index for row in self._grace]
                self._grace_masked = [(row.index, t) for row in self._grace for t in row.state.suppressed_ids()]
            plan.grace, plan.grace_masked = self._grace_index, self._grace_masked
        return plan

    def top_choice(self, row: Row, top_id: int, plan: StepPlan) -> None:
        """Finish an `ask_top` row: force the continuation if the model wanted to stop, else mask."""
        forced = row.state.request_continuation() if top_id in row.state.suppressed_ids() else None
        if forced is not None:
            plan.forced.append((row.index, forced))
        else:
            plan.masked.extend((row.index, tok) for tok in row.state.suppressed_ids())

    def close_now(self, index: int, plan: StepPlan) -> None:
        """The grace-lane row at batch `index` has the close tag among its top `CLOSE_TOP_K`:
        force the closing sequence. The caller masks the lane's other rows (`grace_masked`)."""
        row = self._by_index[index]
        self._leave_grace(row)
        self._hot[row] = None  # the rest of the closing sequence follows
        if not self._catch_up(row):
            return
        forced = row.state.request_close()
        if forced is not None:
            plan.forced.append((index, forced))
        else:  # not in the window after all (cannot happen: a wake id or the limit visits it first)
            plan.masked.extend((index, tok) for tok in row.state.suppressed_ids())

    # ---- internals ----------------------------------------------------------------------------
    def _visit(self, row: Row, plan: StepPlan) -> None:
        if row in self._grace:
            self._leave_grace(row)
        if not self._catch_up(row):
            return
        state = row.state
        self._set_watched(row, state.redirects_eos or (state.phase == Phase.BEFORE and state.params.answer_required))
        wait = state.tokens_until_action()
        if wait is None and row in self._watch:  # nothing owed until its thinking closes
            del self._hot[row]
            return
        if wait is None:  # closed by itself, forced and done, or nothing left to enforce
            self.remove(row.index)
            return
        if wait > 0:
            del self._hot[row]
            row.due = self.step_no + wait
            self._sleeping.setdefault(row.due, []).append(row)
            return
        forced = state.forced_token()
        if forced is not None:
            plan.forced.append((row.index, forced))
        elif state.in_grace:  # into the lane until a boundary, a top-k close or the window's end
            del self._hot[row]
            self._grace[row] = None
            self._grace_index = None
            # Woken at the window's end, or where `min_think_tokens` is reached (EOS unmasked there).
            under_min = state.params.min_think_tokens - state.num_thinking_tokens
            row.due = self.step_no + (min(under_min, state.grace_left) if under_min > 0 else state.grace_left)
            self._sleeping.setdefault(row.due, []).append(row)
        elif (state.params.continuation_ids and state.phase == Phase.THINKING
              and state.num_thinking_tokens < state.params.min_think_tokens):
            plan.ask_top.append(row)
        else:
            plan.masked.extend((row.index, tok) for tok in state.suppressed_ids())

    def _catch_up(self, row: Row) -> bool:
        """Feed the row's new tokens to its state; False if the row had to be dropped."""
        output = row.output
        if len(output) < row.seen:  # the engine discarded tokens (KV-load failure): start over
            row.state, row.seen = ThinkState(self.profile, row.params, row.prompt_ids), 0
        if len(output) == row.seen:
            return True
        if output[-1] < 0:
            # vLLM's async scheduling leaves -1 placeholders unless custom processors were
            # passed with `logits_processors=` (vllm#52461); we cannot budget blind.
            if not self._warned_placeholders:
                self._warned_placeholders = True
                log.error(
                    "think budget disabled for a request: vLLM gave placeholder output ids. Pass "
                    "logits_processors=['vllm_adapter.processor:ThinkBudgetLogitsProcessor'] "
                    "(see vllm_adapter.engine_env.processor_kwargs) or disable async scheduling."
                )
            self.remove(row.index)
            return False
        row.state.advance_many(output[row.seen :])
        row.seen = len(output)
        return True

    def _set_watched(self, row: Row, watched: bool) -> None:
        thinking = watched and row.state.phase == Phase.THINKING
        if self._watch.get(row) is not (thinking if watched else None):
            if watched:
                self._watch[row] = thinking
            else:
                del self._watch[row]
            self._watch_index = None

    def _leave_grace(self, row: Row) -> None:
        if self._grace.pop(row, 0) is None:
            self._grace_index = None

    def _forget(self, row: Row) -> None:
        row.alive = False  # stale entries in `_sleeping` are skipped when their step comes
        self._hot.pop(row, None)
        self._leave_grace(row)
        self._set_watched(row, False)
