"""The fit rule: how a thinking budget and an answer reserve share `max_tokens`. One rule for the
server (`resolve_params`, via `answer_room`) and for training rollouts (`rollout_budget`).

    room    = max_tokens - prefix_tokens - closing_len        (None: not even the tags fit)
    floor   = min(answer_reserve, RESERVE_FLOOR)
    explicit budget B with B + floor <= room:  budget = B,  reserve = min(answer_reserve, room - B)
    otherwise (no budget, or one that cannot fit):  reserve = min(answer_reserve, room),
                                                    budget = room - reserve

So the reserve gives way first: an explicit budget that fits next to the floor is never reduced
(`think_budget: 4, max_tokens: 64` with the 256-token structured-output reserve, `<think>` written
by the model and a 3-token closing: 4 thinking tokens and a 56-token reserve), a budget that fits next to the full reserve leaves the full reserve,
and a budget too large to be kept is treated like no budget: the full reserve, the rest for thinking.
"""

from __future__ import annotations

from dataclasses import dataclass

# The least answer room the reserve shrinks to before an explicit budget gives way: a boxed short
# answer with its tags (training's default answer_reserve).
RESERVE_FLOOR = 16
# Closing sequence length of the longest known profile (GLM-4.1V: `</think>` `<answer>`; others close
# in one token). Config checks use it before a tokenizer is loaded; once the profile is known, its own.
LONGEST_CLOSING = 2


@dataclass(frozen=True)
class Fit:
    think_budget: int  # thinking tokens allowed
    answer_reserve: int  # tokens kept for the answer after a forced close


def fit(think_budget: int | None, max_tokens: int, closing_len: int, answer_reserve: int,
        prefix_tokens: int = 0) -> Fit | None:
    """The budget and reserve for one request (module doc); None when max_tokens cannot hold the
    `prefix_tokens` and the closing sequence."""
    room = max_tokens - prefix_tokens - closing_len
    if room < 0:
        return None
    floor = min(answer_reserve, RESERVE_FLOOR)
    if think_budget is not None and think_budget + floor <= room:
        return Fit(think_budget, min(answer_reserve, room - think_budget))
    reserve = min(answer_reserve, room)
    return Fit(room - reserve, reserve)


def tokens_needed(think_budget: int, closing_len: int, answer_reserve: int, prefix_tokens: int = 0) -> int:
    """The least max_tokens under which `think_budget` is kept (it fits next to the reserve floor)."""
    return prefix_tokens + think_budget + closing_len + min(answer_reserve, RESERVE_FLOOR)
