"""Split a response's token ids into reasoning and answer, from the state's spans.

Works on ids, never on re-tokenised text, so usage counts are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from budget.state import ThinkState


@dataclass(frozen=True)
class Segments:
    reasoning_ids: list[int]  # inside <think>...</think>, tags excluded
    answer_ids: list[int]  # after the closing sequence; answer tags and EOS stripped
    num_thinking_tokens: int
    answer_forced: bool
    thinking_closed: bool


def split_output(state: ThinkState, output_ids: Sequence[int]) -> Segments:
    """`state` must have been advanced over exactly `output_ids` (see `budget.state.replay`)."""
    profile = state.profile
    if state.think_start is None:  # never thought: everything is answer
        reasoning: list[int] = []
        answer = list(output_ids)
    else:
        end = state.think_end if state.think_end is not None else len(output_ids)
        reasoning = list(output_ids[state.think_start : end])
        answer = list(output_ids[state.answer_start :]) if state.answer_start is not None else []
    drop = {profile.answer_open_id, profile.answer_close_id, *profile.eos_token_ids} - {None}
    answer = [t for t in answer if t not in drop]
    return Segments(
        reasoning_ids=reasoning,
        answer_ids=answer,
        num_thinking_tokens=state.num_thinking_tokens,
        answer_forced=state.answer_forced,
        thinking_closed=state.answer_start is not None,
    )
