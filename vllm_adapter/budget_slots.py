"""Per-slot budget bookkeeping for vLLM's V2 model runner, in pure Python + numpy (no torch).

The V2 runner keys requests by a recycled slot index and keeps the committed token history on
the device (`req_states.all_token_ids`, valid up to `total_len`). This keeps one `ThinkState`
per budgeted slot on the host and a numpy array `wake` of the sample position at which each slot
could first owe something (`ThinkState.tokens_until_action`): the per-step test "is any row due"
is one vectorised compare against the host's upper bound on sequence lengths, and only due slots
have their new tokens read back and fed to their state, each token once.

Speculative decoding: a request owns one logits row per draft token; row j samples after the
committed history plus drafts 1..j. Row j's decision comes from a fork of the state advanced on
those drafts, and the fork whose drafts were accepted becomes the slot's state at the next visit
(so a min-think continuation chosen on a draft row is remembered exactly as V1 remembers it). A
draft that the previous row made impossible (forced elsewhere, or masked) can never be accepted:
the rows after it repeat that decision instead of re-planning from a dead draft.

`answer_required` is the one duty outside `tokens_until_action`'s promise (an EOS the model would
pick becomes the close tag on every free thinking step). It is not planned here: each visit
reports the slot's `Watch` flag (`flag`), and the processor keeps the flag on the device, where it
follows the committed tokens and the drafts by itself (`<think>` opens, `</think>` closes, the first
visible answer token) and redirects EOS as one masked op. So a watched slot sleeps like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from budget import BudgetParams, Phase, ThinkProfile, ThinkState, enforces, resolve_params
from budget.state import CLOSE_TOP_K
from vllm_adapter.budget_rows import StepPlan

NEVER = np.iinfo(np.int64).max
Decision = tuple[int, ...] | frozenset[int] | None  # (forced id,) | masked ids | free


class Watch:
    """A slot's `answer_required` duty, as the device keeps it (int8 per slot and per row)."""

    FREE = 0  # nothing to do on the logits
    BEFORE = 1  # thinking not open yet: becomes REDIRECT at `<think>`
    REDIRECT = 2  # thinking freely: EOS -> close tag; becomes GUARD at the model's own `</think>`
    GUARD = 3  # answer not started: EOS and the answer-close tag masked until a visible token


@dataclass(slots=True, eq=False)
class Slot:
    params: BudgetParams  # as requested; resolved against the prompt at the first visit
    max_tokens: int | None
    state: ThinkState | None = None  # None until the first visit has read the prompt
    prompt_len: int = 0
    seen: int = 0  # absolute history length (prompt + output) fed to `state`
    forks: list[tuple[tuple[int, ...], ThinkState]] = field(default_factory=list)  # (drafts, state) per draft row


class BudgetSlots:
    """The budgeted requests of one V2 engine, keyed by request slot."""

    def __init__(self, profile: ThinkProfile, max_num_reqs: int):
        self.profile = profile
        self.wake = np.full(max_num_reqs, NEVER, dtype=np.int64)  # [S] sample position of the next visit
        self._slots: dict[int, Slot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, idx: int) -> bool:
        return idx in self._slots

    def get(self, idx: int) -> Slot:
        return self._slots[idx]

    # ---- admission ----------------------------------------------------------------------------
    def add(self, idx: int, params: BudgetParams, max_tokens: int | None) -> None:
        """A request took slot `idx` (new, or resumed after preemption): reset the slot fully."""
        self._slots[idx] = Slot(params, max_tokens)
        self.wake[idx] = 0  # visit at its first step: the prompt is on the device by then

    def drop(self, idx: int) -> None:
        self._slots.pop(idx, None)
        self.wake[idx] = NEVER

    def due(self, slots: np.ndarray, seq_len_bound: np.ndarray) -> np.ndarray:
        """[R] bool: which batch positions may owe something this step. `seq_len_bound` bounds the
        sample position of every row of the request (exact without speculative decoding)."""
        return self.wake[slots] <= seq_len_bound  # [R]

    def read_from(self, idx: int) -> int:
        """First history position this slot still has to read (0: it needs its prompt too)."""
        slot = self._slots[idx]
        return 0 if slot.state is None else slot.seen

    # ---- per visit ----------------------------------------------------------------------------
    def catch_up(self, idx: int, history: Sequence[int], prompt_len: int) -> bool:
        """Feed the slot the committed tokens `history` (from `read_from(idx)` up to total_len).
        False when the slot has nothing more to enforce and was dropped."""
        slot = self._slots[idx]
        if slot.state is None:  # first visit: the prompt (and, on resume, earlier output) is here
            prompt = history[:prompt_len]
            params = resolve_params(self.profile, slot.params, prompt, slot.max_tokens)
            if not enforces(params):
                self.drop(idx)
                return False
            slot.params, slot.prompt_len = params, prompt_len
            slot.state = ThinkState(self.profile, params, prompt)
            slot.seen, history = prompt_len, history[prompt_len:]
        if slot.forks and history:  # speculative step: keep the state of the accepted draft row
            for drafts, fork in reversed(slot.forks):
                if len(drafts) <= len(history) and tuple(history[: len(drafts)]) == drafts:
                    slot.state, slot.seen, history = fork, slot.seen + len(drafts), history[len(drafts):]
                    break
        slot.forks = []
        slot.state.advance_many(history)
        slot.seen += len(history)
        if slot.state.tokens_until_action() is None and not watch_of(slot.state):
            self.drop(idx)
            return False
        return True

    def flag(self, idx: int) -> int:
        """The slot's `Watch` flag at its committed history (after `catch_up`)."""
        return watch_of(self._slots[idx].state)

    def wants_logits(self, idx: int) -> bool:
        """Whether a row of this slot may need the model's own preference: its top choice (a
        min-think continuation) or the close tag's rank (the grace window)."""
        state = self._slots[idx].state
        params = state.params
        return state.phase <= Phase.THINKING and (
            bool(params.grace) or (bool(params.continuation_ids) and state.num_thinking_tokens < params.min_think_tokens))

    def decide(self, idx: int, rows: Sequence[int], drafts: Sequence[int], ask: Callable[[int], tuple[int, int]],
               plan: StepPlan, watch: list[tuple[int, int]]) -> None:
        """Plan the logits of the slot's rows this step. rows[j] samples output after drafts[:j]
        (len(drafts) == len(rows) - 1); `ask(row)` is (the row's argmax, the close tag's rank in
        it), asked only when needed. Rows planned here get their `Watch` flag in `watch` as
        (row, flag); the others follow the slot's flag on the device."""
        slot = self._slots[idx]
        state = slot.state
        wait = state.tokens_until_action()
        # The watch is the device's: a watched slot with nothing owed sleeps too.
        self.wake[idx] = NEVER if wait is None else slot.seen + wait
        if wait is None or wait >= len(rows):
            return  # nothing owed by any row this step
        decision = self._decide_row(state, rows[0], ask, plan, watch)
        for j in range(1, len(rows)):
            draft = drafts[j - 1]
            if not _possible(decision, draft):  # later rows are unreachable: keep the decision
                for row in rows[j:]:
                    _record(decision, row, plan)
                    watch.append((row, Watch.FREE))
                return
            state = state.fork()
            state.advance(draft)
            slot.forks.append((tuple(drafts[:j]), state))
            decision = self._decide_row(state, rows[j], ask, plan, watch)

    @staticmethod
    def _decide_row(state: ThinkState, row: int, ask: Callable[[int], tuple[int, int]], plan: StepPlan,
                    watch: list[tuple[int, int]]) -> Decision:
        """The V1 processor's per-row rule (`BudgetRows._visit`, `top_choice`, `close_rank`)."""
        watch.append((row, watch_of(state)))  # before any request_*: V1 redirects, then forces
        if state.tokens_until_action() != 0:
            return None
        forced = state.forced_token()
        if forced is None:
            suppressed = state.suppressed_ids()
            if state.in_grace:
                forced = state.request_close() if ask(row)[1] < CLOSE_TOP_K else None
            elif (state.params.continuation_ids and state.phase == Phase.THINKING
                  and state.num_thinking_tokens < state.params.min_think_tokens and ask(row)[0] in suppressed):
                forced = state.request_continuation()
            if forced is None:
                _record(suppressed, row, plan)
                return suppressed or None
        _record((forced,), row, plan)
        return (forced,)


def watch_of(state: ThinkState) -> int:
    """V1's watch set (`BudgetRows._set_watched`) as a `Watch` flag, plus GUARD: an answer not
    started yet after the model closed thinking itself (V1 wakes that row by its last id)."""
    if state.redirects_eos:
        return Watch.REDIRECT
    params = state.params
    if not params.answer_required:
        return Watch.FREE
    if state.phase == Phase.BEFORE:
        return Watch.BEFORE
    if state.phase == Phase.ANSWER and not state.answer_seen:
        return Watch.GUARD
    return Watch.FREE


def _possible(decision: Decision, token: int) -> bool:
    if decision is None:
        return True
    if isinstance(decision, tuple):
        return token == decision[0]
    return token not in decision


def _record(decision: Decision, row: int, plan: StepPlan) -> None:
    if isinstance(decision, tuple):
        plan.forced.append((row, decision[0]))
    elif decision:
        plan.masked.extend((row, tok) for tok in decision)
