"""The per-request budget state machine: one transition per generated token.

Adapters (vLLM logits processor, HF LogitsProcessor, training rollouts, the server's stream
splitter) all drive this one class:

    state = ThinkState(profile, params, prompt_ids)
    each step:  forced = state.forced_token()         # the id that must be emitted now, or None
                banned = state.suppressed_ids()       # ids to mask (min-think), usually empty
                ... sample ...
                state.advance(token_id)

Budget N allows at most N thinking tokens (counted after `<think>`, which the prompt may already
hold); then the closing sequence is forced one token per step, exactly once. If the model closes
thinking itself nothing is forced. After the closing sequence sampling is free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum

from budget.params import BudgetParams
from budget.profile import ThinkProfile


class Phase(IntEnum):
    BEFORE = 0  # thinking not opened yet: tokens do not count
    THINKING = 1  # inside <think>: every token counts against the budget
    CLOSING = 2  # the forced closing sequence is being emitted
    ANSWER = 3  # thinking is over (closed by the model or forced); nothing more to do
    DONE = 4  # the model ended the response (EOS) while thinking


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
        "answer_forced", "think_start", "think_end", "answer_start",
        "_pending", "_pending_pos", "_force_at", "_plan", "_suppress",
    )

    def __init__(self, profile: ThinkProfile, params: BudgetParams, prompt_ids: Sequence[int] = ()):
        for ids, name in ((params.transition_ids, "transition"), (params.continuation_ids, "continuation")):
            if profile.think_close_id in ids or profile.eos_token_ids.intersection(ids):
                raise ValueError(f"{name} ids must not contain the think-close or EOS ids")
        self.profile = profile
        self.params = params
        self.phase = prompt_phase(profile, prompt_ids)
        self.num_generated = 0  # output tokens seen so far (= next output position)
        self.num_thinking_tokens = 0
        self.forced_positions: list[int] = []
        self.answer_forced = False
        # Output index spans: reasoning is [think_start, think_end), answer starts at answer_start.
        self.think_start: int | None = 0 if self.phase == Phase.THINKING else None
        self.think_end: int | None = None
        self.answer_start: int | None = 0 if self.phase == Phase.ANSWER else None
        self._pending: tuple[int, ...] = ()
        self._pending_pos = 0
        budget = params.think_budget
        # The transition counts as thinking, so it starts early enough to end at the budget.
        transition = params.transition_ids if budget is not None and len(params.transition_ids) <= budget else ()
        self._plan = transition + profile.closing_ids
        self._force_at = None if budget is None else budget - len(transition)
        self._suppress = frozenset({profile.think_close_id, *profile.eos_token_ids})
        if self.phase == Phase.THINKING:
            self._schedule()
        elif self.phase == Phase.BEFORE and params.open_thinking:
            self._pending = (profile.think_open_id,)  # a forced `<think>` at output position 0

    # ---- queries (called before sampling) -------------------------------------------------
    def forced_token(self) -> int | None:
        """The token id that must be emitted at this step, or None for free sampling."""
        return self._pending[self._pending_pos] if self._pending else None

    def suppressed_ids(self) -> frozenset[int]:
        """Ids to mask at this step: the close tag and EOS while under `min_think_tokens`."""
        if self.phase == Phase.THINKING and not self._pending and self.num_thinking_tokens < self.params.min_think_tokens:
            return self._suppress
        return frozenset()

    def request_continuation(self) -> int | None:
        """The model's top choice was to stop before the minimum: queue the continuation text
        (s1-style "Wait") and return its first id, or None when no continuation is configured
        (then masking alone keeps the model thinking). Truncated so it never overruns the budget."""
        if self._pending or not self.params.continuation_ids or not self.suppressed_ids():
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
        catch up with `advance_many` afterwards (the vLLM processor's cost model)."""
        if self.phase >= Phase.ANSWER:
            return None
        if self._pending or self.phase == Phase.CLOSING:
            return 0
        wants_min = self.num_thinking_tokens < self.params.min_think_tokens
        if self.phase == Phase.THINKING:
            if wants_min:
                return 0
            return None if self._force_at is None else self._force_at - self.num_thinking_tokens
        # BEFORE: the very next token may be `<think>`, and then the budget starts counting.
        if wants_min:
            return 1
        return None if self._force_at is None else 1 + self._force_at

    @property
    def finished(self) -> bool:
        """True once the budget can force nothing more: adapters may drop the row."""
        return self.phase >= Phase.ANSWER

    @property
    def is_thinking(self) -> bool:
        return self.phase == Phase.THINKING

    # ---- transition (called with the token actually emitted) ------------------------------
    def advance(self, token_id: int) -> None:
        pos = self.num_generated
        self.num_generated += 1
        if self._pending:
            if token_id == self._pending[self._pending_pos]:
                self.forced_positions.append(pos)
                self._pending_pos += 1
                if self._pending_pos == len(self._pending):
                    self._pending, self._pending_pos = (), 0
            else:  # something else overrode us (another processor): drop the plan, re-plan below
                self._pending, self._pending_pos = (), 0
        phase = self.phase
        if phase == Phase.THINKING:
            if token_id == self.profile.think_close_id:
                self.think_end = pos
                forced = bool(self.forced_positions) and self.forced_positions[-1] == pos
                if forced and self._pending:  # the rest of the closing sequence follows
                    self.phase = Phase.CLOSING
                else:
                    self._close(pos + 1, forced)
            elif token_id in self.profile.eos_token_ids:
                self.think_end = pos
                self.phase = Phase.DONE
            else:
                self.num_thinking_tokens += 1
                self._schedule()
        elif phase == Phase.CLOSING:
            if not self._pending:
                self._close(pos + 1, forced=True)
        elif phase == Phase.BEFORE and token_id == self.profile.think_open_id:
            self.phase = Phase.THINKING
            self.think_start = pos + 1
            self._schedule()

    def advance_many(self, token_ids: Iterable[int]) -> None:
        for tok in token_ids:
            self.advance(tok)

    # ---- internals ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._pending and self._force_at is not None and self.num_thinking_tokens >= self._force_at:
            # Only reached once: after the plan is queued, thinking ends at the plan's close tag.
            start = self.num_thinking_tokens - self._force_at
            self._pending, self._pending_pos = self._plan[start:] or self.profile.closing_ids, 0

    def _close(self, answer_start: int, forced: bool) -> None:
        self.phase = Phase.ANSWER
        self.answer_start = answer_start
        self.answer_forced = forced


def replay(profile: ThinkProfile, params: BudgetParams, prompt_ids: Sequence[int], output_ids: Iterable[int]) -> ThinkState:
    """Re-run the state over a finished output: exact counts, spans and forced positions.

    Budget forcing is a pure function of the ids, so this recovers what the engine's processor
    did without any channel back from the engine. (A min-think continuation depends on the logits
    and is only recognised when the ids match the plan at that point.)
    """
    state = ThinkState(profile, params, prompt_ids)
    state.advance_many(output_ids)
    return state
