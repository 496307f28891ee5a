"""The per-request budget state machine: one transition per generated token.

Adapters (vLLM logits processor, HF LogitsProcessor, training rollouts, the server's stream
splitter) all drive this one class:

    state = ThinkState(profile, params, prompt_ids)
    each step:  forced = state.forced_token()         # the id that must be emitted now, or None
                banned = state.suppressed_ids()       # ids to mask (min-think, grace, empty answer)
                if state.redirects_eos: move EOS's probability onto the close tag (answer_required)
                if state.in_grace and close tag in the model's top-k: state.request_close()
                ... sample ...
                state.advance(token_id)

Budget N allows at most N thinking tokens (counted after `<think>`, which the prompt may already
hold); then the closing sequence is forced one token per step, exactly once. If the model closes
thinking itself nothing is forced. After the closing sequence sampling is free, except that the
answer may not be empty (`answer_required`).

Grace G: from N on, thinking may go on for at most G more tokens and closes at the first natural
boundary: a boundary token (sentence/line end, from the profile) or the close tag among the model's
top-k (the close tag is otherwise masked there, so a close inside the window is always a forced one
and `replay` recovers it from the ids alone). A budget message (wrap-up text) counts as thinking and
is forced before the closing sequence, so the total stays within N (+ G).

`close_reason` says how thinking ended: model | budget | boundary | grace_limit | eos | truncated.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from enum import IntEnum

from budget.params import BudgetParams
from budget.profile import ThinkProfile

# In the grace window the close tag ends thinking when it is among the model's top CLOSE_TOP_K ids.
CLOSE_TOP_K = 4
CLOSE_REASONS = ("model", "budget", "boundary", "grace_limit", "eos", "truncated")


class Phase(IntEnum):
    BEFORE = 0  # thinking not opened yet: tokens do not count
    THINKING = 1  # inside <think>: every token counts against the budget
    CLOSING = 2  # the forced closing sequence is being emitted
    ANSWER = 3  # thinking is over (closed by the model or forced)
    DONE = 4  # the response ended (EOS) while thinking, or was truncated at the budget


def prompt_phase(profile: ThinkProfile, prompt_ids: Sequence[int]) -> Phase:
    """Where a response starts: THINKING if the prompt leaves `<think>` open, ANSWER if the prompt
    ends with the full closing sequence (budget 0 prefill), else BEFORE.

    Only the prompt's tail decides: an earlier turn's `<think>...</think>` in the history must not
    stop the new response's thinking from being budgeted.
    """
    n = len(profile.closing_ids)
    if n and len(prompt_ids) >= n and tuple(prompt_ids[-n:]) == profile.closing_ids:
        return Phase.ANSWER
    for tok in reversed(prompt_ids):
        if tok == profile.think_open_id:
            return Phase.THINKING
        if tok == profile.think_close_id:
            return Phase.BEFORE
    return Phase.BEFORE


class ThinkState:
    """Budget bookkeeping for one request. Plain attributes, no allocation per step."""

    __slots__ = (
        "profile", "params", "phase", "num_generated", "num_thinking_tokens", "forced_positions",
        "answer_forced", "think_start", "think_end", "answer_start", "close_reason", "answer_seen",
        "_pending", "_pending_pos", "_pending_reason", "_force_at", "_limit", "_open", "_plan", "_suppress",
        "_grace_suppress", "_answer_suppress", "_last",
    )

    def __init__(self, profile: ThinkProfile, params: BudgetParams, prompt_ids: Sequence[int] = ()):
        for ids, name in ((params.message_ids, "message"), (params.continuation_ids, "continuation")):
            if profile.think_close_id in ids or profile.eos_token_ids.intersection(ids):
                raise ValueError(f"{name} ids must not contain the think-close or EOS ids")
        self.profile = profile
        self.params = params
        self.phase = prompt_phase(profile, prompt_ids)
        self.num_generated = 0  # output tokens seen so far (= next output position)
        self.num_thinking_tokens = 0
        self.forced_positions: list[int] = []
        self.answer_forced = False
        self.close_reason: str | None = None
        # A visible answer token was emitted. A prompt that closed thinking itself is left alone.
        self.answer_seen = self.phase == Phase.ANSWER
        # Output index spans: reasoning is [think_start, think_end), answer starts at answer_start.
        self.think_start: int | None = 0 if self.phase == Phase.THINKING else None
        self.think_end: int | None = None
        self.answer_start: int | None = 0 if self.phase == Phase.ANSWER else None
        self._pending: tuple[int, ...] = ()
        self._pending_pos = 0
        self._pending_reason: str | None = None
        self._last = -1  # the last thinking token (boundary check)
        budget = params.think_budget
        if params.truncate:  # stop at the budget: a stop token, no message, no grace
            message, grace, self._plan = (), 0, (profile.stop_id,)
        else:
            # The message counts as thinking, so it starts early enough to end at the budget.
            message = params.message_ids if budget is not None and len(params.message_ids) <= budget else ()
            grace, self._plan = params.grace, message + profile.closing_ids
        # Boundaries close from `_force_at` (the message, then the close tag, ends at or past the
        # budget); the close tag's top-k rule and its mask start at the budget itself, so a model
        # ranking `</think>` high before its budget is spent is not cut short by a message's length.
        self._force_at = None if budget is None else budget - len(message)
        self._limit = None if budget is None else self._force_at + grace  # the window closes here: forced
        self._open = None if budget is None else max(self._force_at, min(budget, self._limit))
        eos = profile.eos_token_ids
        self._suppress = frozenset({profile.think_close_id, *eos})
        self._grace_suppress = self._suppress if params.answer_required else frozenset({profile.think_close_id})
        self._answer_suppress = frozenset(t for t in (*eos, profile.answer_close_id) if t is not None)
        if self.phase == Phase.THINKING:
            self._schedule()
        elif self.phase == Phase.BEFORE and params.open_thinking:
            self._pending = (profile.think_open_id,)  # a forced `<think>` at output position 0

    # ---- queries (called before sampling) -------------------------------------------------
    def forced_token(self) -> int | None:
        """The token id that must be emitted at this step, or None for free sampling."""
        return self._pending[self._pending_pos] if self._pending else None

    def suppressed_ids(self) -> frozenset[int]:
        """Ids to mask at this step: the close tag and EOS under `min_think_tokens`; the close tag
        (and EOS) in the grace window; EOS and the answer-close tag before the first answer token."""
        if self._pending:
            return frozenset()
        if self.phase == Phase.THINKING:
            if self.num_thinking_tokens < self.params.min_think_tokens:
                return self._suppress
            if self.in_grace:
                return self._grace_suppress
        elif self.phase == Phase.ANSWER and self.params.answer_required and not self.answer_seen:
            return self._answer_suppress
        return frozenset()

    @property
    def in_grace(self) -> bool:
        """Inside the grace window with nothing queued: the adapter asks `wants_close(rank)`."""
        return (self.phase == Phase.THINKING and not self._pending and self._open is not None
                and self._open <= self.num_thinking_tokens < self._limit)

    @property
    def grace_left(self) -> int:
        """Thinking tokens left before the grace window's forced close (0 outside the window): a
        batched adapter that checks window rows in bulk wakes the row after that many tokens."""
        return self._limit - self.num_thinking_tokens if self.in_grace else 0

    @property
    def redirects_eos(self) -> bool:
        """While thinking freely, an EOS the model picks becomes the close tag (its probability is
        moved onto `</think>`): the thought ends with an answer (issue 19.2, `answer_required`)."""
        return (self.phase == Phase.THINKING and self.params.answer_required and not self._pending
                and not self.in_grace)

    def request_close(self) -> int | None:
        """In the grace window the model has the close tag among its top-k: queue the closing
        sequence (no message: the model is ending by itself) and return its first id."""
        if not self.in_grace:
            return None
        self._queue(self.profile.closing_ids, "boundary")
        return self._pending[0]

    def request_continuation(self) -> int | None:
        """The model's top choice was to stop before the minimum: queue the continuation text
        (s1-style "Wait") and return its first id, or None when no continuation is configured
        (then masking alone keeps the model thinking). Truncated so it never overruns the budget."""
        if (self._pending or not self.params.continuation_ids or self.phase != Phase.THINKING
                or self.num_thinking_tokens >= self.params.min_think_tokens):
            return None
        ids = self.params.continuation_ids
        if self._force_at is not None:
            ids = ids[: max(0, self._force_at - self.num_thinking_tokens)]
        if not ids:
            return None
        self._pending, self._pending_pos = ids, 0
        return ids[0]

    def tokens_until_action(self) -> int | None:
        """Fewest tokens that can be emitted before `forced_token()` or `suppressed_ids()` may ask
        for something: 0 means now, None means never again. Whatever those tokens are, nothing is
        owed before then, so a batched adapter can leave the row alone for that many steps and
        catch up with `advance_many` afterwards (the vLLM processor's cost model). `redirects_eos`
        is the one per-step duty outside this promise (see the adapters' watch set)."""
        if self._pending or self.phase == Phase.CLOSING:
            return 0
        if self.phase >= Phase.ANSWER:
            return 0 if self.suppressed_ids() else None
        wants_min = self.num_thinking_tokens < self.params.min_think_tokens
        if self.phase == Phase.THINKING:
            if wants_min:
                return 0
            return None if self._force_at is None else max(0, self._force_at - self.num_thinking_tokens)
        # BEFORE: the very next token may be `<think>`, and then the budget starts counting.
        if wants_min:
            return 1
        return None if self._force_at is None else 1 + self._force_at

    @property
    def finished(self) -> bool:
        """True once the budget can ask nothing more: adapters may drop the row."""
        return self.phase >= Phase.ANSWER and not self.suppressed_ids()

    # ---- transition (called with the token actually emitted) ------------------------------
    def advance(self, token_id: int) -> None:
        pos = self.num_generated
        self.num_generated += 1
        profile = self.profile
        if token_id == profile.think_close_id and self.in_grace:
            # The close tag is masked in the window unless the adapter forced it (top-k): replayed
            # from the ids alone, it is the same forced closing sequence.
            self._queue(profile.closing_ids, "boundary")
        forced_now = False
        if self._pending:
            if token_id == self._pending[self._pending_pos]:
                forced_now = True
                if token_id != profile.stop_id or not self.params.truncate:  # the stop is not an output token
                    self.forced_positions.append(pos)
                self._pending_pos += 1
                if self._pending_pos == len(self._pending):
                    self._pending, self._pending_pos = (), 0
            else:  # something else overrode us (another processor): drop the plan, re-plan below
                self._pending, self._pending_pos = (), 0
        phase = self.phase
        if phase == Phase.THINKING:
            if token_id == profile.think_close_id:
                self.think_end = pos
                if forced_now and self._pending:  # the rest of the closing sequence follows
                    self.phase = Phase.CLOSING
                else:
                    self._close(pos + 1, forced_now)
            elif token_id in profile.eos_token_ids:
                self.think_end = pos
                self.phase = Phase.DONE
                self.close_reason = "truncated" if forced_now and self.params.truncate else "eos"
            else:
                self.num_thinking_tokens += 1
                self._last = token_id
                self._schedule()
        elif phase == Phase.CLOSING:
            if not self._pending:
                self._close(pos + 1, forced=True)
        elif phase == Phase.ANSWER:
            if not self.answer_seen and token_id not in self._answer_suppress and token_id != profile.answer_open_id:
                self.answer_seen = True
        elif phase == Phase.BEFORE and token_id == profile.think_open_id:
            self.phase = Phase.THINKING
            self.think_start = pos + 1
            self._schedule()

    def advance_many(self, token_ids: Iterable[int]) -> None:
        for tok in token_ids:
            self.advance(tok)

    def fork(self) -> ThinkState:
        """An independent copy (speculative decoding: one state per draft row, the accepted one
        is kept). Every other attribute is immutable, so a shallow copy shares nothing mutable."""
        twin = copy.copy(self)
        twin.forced_positions = list(self.forced_positions)
        return twin

    # ---- internals ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        """After a thinking token: queue the plan at the grace limit, or at a boundary inside it."""
        if self._pending or self._force_at is None:
            return
        n = self.num_thinking_tokens
        if n >= self._limit:
            # Only reached once: after the plan is queued, thinking ends at the plan's close tag.
            reason = "truncated" if self.params.truncate else ("budget" if self._limit == self._force_at else "grace_limit")
            self._queue(self._plan[n - self._limit:] or self.profile.closing_ids, reason)
        elif n >= self._force_at and n > 0 and self._last in self.profile.boundary_ids:
            self._queue(self._plan, "boundary")

    def _queue(self, ids: tuple[int, ...], reason: str) -> None:
        self._pending, self._pending_pos, self._pending_reason = ids, 0, reason

    def _close(self, answer_start: int, forced: bool) -> None:
        self.phase = Phase.ANSWER
        self.answer_start = answer_start
        self.answer_forced = forced
        self.close_reason = self._pending_reason if forced else "model"


def replay(profile: ThinkProfile, params: BudgetParams, prompt_ids: Sequence[int], output_ids: Iterable[int]) -> ThinkState:
    """Re-run the state over a finished output: exact counts, spans, forced positions and the
    close reason.

    Budget forcing is a pure function of the ids, so this recovers what the engine's processor
    did without any channel back from the engine. (A min-think continuation depends on the logits
    and is only recognised when the ids match the plan at that point.)
    """
    state = ThinkState(profile, params, prompt_ids)
    state.advance_many(output_ids)
    return state
