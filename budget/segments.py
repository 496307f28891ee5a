"""Split a response's token ids into reasoning and answer, from the state's spans.

Works on ids, never on re-tokenised text, so usage counts are exact. `output_side` is the one
rule: `split_output` applies it to a finished output, the server's stream splitter to each new id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from budget.profile import ThinkProfile
from budget.state import ThinkState

Side = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class Segments:
    reasoning_ids: list[int]  # inside <think>...</think>, tags excluded
    answer_ids: list[int]  # after the closing sequence; answer tags and EOS stripped
    num_thinking_tokens: int
    answer_forced: bool
    thinking_closed: bool


def hidden_ids(profile: ThinkProfile) -> frozenset[int]:
    """Ids that never show in the answer text: the answer tags and EOS."""
    return frozenset(t for t in (profile.answer_open_id, profile.answer_close_id, *profile.eos_token_ids)
                     if t is not None)


def output_side(state: ThinkState, pos: int, token_id: int, hidden: frozenset[int]) -> Side | None:
    """Which part output position `pos` belongs to, once `state` has advanced over it; None for
    the think tags, the closing sequence and `hidden` ids."""
    start, end = state.think_start, state.think_end
    if start is not None and start <= pos and (end is None or pos < end):
        return "reasoning"
    if start is None or (state.answer_start is not None and pos >= state.answer_start):
        return None if token_id in hidden else "answer"  # never thought, or after the close
    return None


def boxed_ids(profile: ThinkProfile, answer_ids: Sequence[int]) -> list[int] | None:
    """Ids inside the last `<|begin_of_box|>...<|end_of_box|>` of an answer (to the end when the
    box is never closed); None when the answer has no box or the profile no box tokens."""
    if profile.box_open_id is None or profile.box_open_id not in answer_ids:
        return None
    start = max(i for i, t in enumerate(answer_ids) if t == profile.box_open_id) + 1
    tail = list(answer_ids[start:])
    return tail[: tail.index(profile.box_close_id)] if profile.box_close_id in tail else tail


def split_output(state: ThinkState, output_ids: Sequence[int]) -> Segments:
    """`state` must have been advanced over exactly `output_ids` (see `budget.state.replay`)."""
    hidden = hidden_ids(state.profile)
    parts: dict[Side, list[int]] = {"reasoning": [], "answer": []}
    for pos, tok in enumerate(output_ids):
        side = output_side(state, pos, tok, hidden)
        if side is not None:
            parts[side].append(tok)
    return Segments(
        reasoning_ids=parts["reasoning"],
        answer_ids=parts["answer"],
        num_thinking_tokens=state.num_thinking_tokens,
        answer_forced=state.answer_forced,
        thinking_closed=state.answer_start is not None,
    )
