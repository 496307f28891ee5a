"""One response, split by token ids: thinking, answer, boxed answer, and whether the layout is right.

Rewards read this, never the decoded text with a regex of their own: the split is the one serving
uses (`budget.replay` → `budget.split_output` → `budget.boxed_ids`), so a tag is a tag id and text
that merely looks like a tag is not one.

The format gate (the report's rule) asks for exactly this layout of ids:

    [whitespace] <think> thinking </think> [whitespace] <answer> ... <|begin_of_box|> x <|end_of_box|> ... </answer> [whitespace] [EOS]

each tag once, exactly one box in the answer. Families without answer tags (GLM-4.5V, generic
`<think>` models) skip the answer-tag checks; families without box tokens take the whole answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budget import BudgetParams, ThinkProfile, boxed_ids, replay, split_output


@dataclass(frozen=True)
class Response:
    thinking: str  # inside <think>...</think>
    answer: str  # the answer without its tags, box tags removed
    boxed: str | None  # inside the one box; None when there is not exactly one
    well_formed: bool  # the layout above holds
    num_thinking_tokens: int = 0
    answer_forced: bool = False

    @classmethod
    def from_ids(cls, output_ids: Sequence[int], profile: ThinkProfile, tokenizer: Any,
                 prompt_ids: Sequence[int] = (), params: BudgetParams | None = None) -> Response:
        """`params` must be the BudgetParams the rollout ran with (forced positions are replayed)."""
        state = replay(profile, params or BudgetParams(), prompt_ids, output_ids)
        seg = split_output(state, output_ids)
        decode = lambda ids: tokenizer.decode(list(ids), skip_special_tokens=False)  # noqa: E731
        box_tokens = {profile.box_open_id, profile.box_close_id} - {None}
        answer_text = decode([t for t in seg.answer_ids if t not in box_tokens])
        if profile.box_open_id is None:
            boxed = answer_text.strip()
        else:
            one_box = seg.answer_ids.count(profile.box_open_id) == 1 and seg.answer_ids.count(profile.box_close_id) == 1
            inner = boxed_ids(profile, seg.answer_ids) if one_box else None
            # boxed_ids runs to the end when the box is never closed: that is not one box.
            closed = inner is not None and profile.box_close_id in seg.answer_ids[seg.answer_ids.index(profile.box_open_id):]
            boxed = decode(inner).strip() if closed else None
        ok = seg.thinking_closed and _layout_ok(output_ids, profile, tokenizer, state.think_start,
                                                state.think_end, state.answer_start, prompt_opened=bool(prompt_ids)
                                                and state.think_start == 0)
        return cls(decode(seg.reasoning_ids), answer_text, boxed, ok and boxed is not None,
                   seg.num_thinking_tokens, seg.answer_forced)


def _blank(tokenizer: Any, ids: Sequence[int]) -> bool:
    return not tokenizer.decode(list(ids), skip_special_tokens=True).strip()


def _layout_ok(ids: Sequence[int], profile: ThinkProfile, tokenizer: Any, think_start: int | None,
               think_end: int | None, answer_start: int | None, prompt_opened: bool) -> bool:
    """Each tag once and in order, nothing but whitespace outside the tags (see the module doc)."""
    if think_start is None or think_end is None or answer_start is None:
        return False
    ids = list(ids)
    opens = ids.count(profile.think_open_id)
    if ids.count(profile.think_close_id) != 1 or opens != (0 if prompt_opened else 1):
        return False
    if not prompt_opened and not _blank(tokenizer, ids[: think_start - 1]):
        return False  # text before <think>
    body = ids[answer_start:]  # after the closing sequence (GLM-4.1V's includes <answer>)
    a_open, a_close = profile.answer_open_id, profile.answer_close_id
    if a_open is not None and a_close is not None:
        closing = ids[think_end:answer_start]
        if a_open not in closing:  # the model closed thinking itself: <answer> must follow the blank gap
            if a_open not in body or not _blank(tokenizer, body[: body.index(a_open)]):
                return False
            body = body[body.index(a_open) + 1:]
        if a_open in body or body.count(a_close) != 1:
            return False
        tail = body[body.index(a_close) + 1:]
        if any(t in profile.eos_token_ids for t in tail[:-1]) or not _blank(tokenizer, tail):
            return False  # text after </answer> (EOS may end it)
    return True
