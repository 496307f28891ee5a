"""Output token ids → reasoning text, answer text and exact counts.

Everything is derived from ids with the budget core: `budget.replay` re-runs the state machine
the engine's logits processor ran (forcing is a pure function of the ids), `budget.split_output`
cuts reasoning from answer. Streaming feeds each new id to a live `ThinkState` to know which side
of the split it is on, so both paths agree token for token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budget import BudgetParams, ThinkProfile, ThinkState, replay, split_output
from serving.responses import ChoiceThinkcap
from serving.textstream import IncrementalDecoder, StopFilter, decode, trim_at_stop

_NO_BUDGET = BudgetParams()  # still tracks <think> spans when the request set no budget


def boxed_answer(tokenizer: Any, profile: ThinkProfile, answer_ids: Sequence[int]) -> str | None:
    """Text of the last `<|begin_of_box|>...<|end_of_box|>` in the answer (ids, not regexes)."""
    if profile.box_open_id is None or profile.box_open_id not in answer_ids:
        return None
    start = max(i for i, t in enumerate(answer_ids) if t == profile.box_open_id) + 1
    tail = list(answer_ids[start:])
    end = tail.index(profile.box_close_id) if profile.box_close_id in tail else len(tail)
    return decode(tokenizer, tail[:end]).strip()


@dataclass(frozen=True)
class ChoiceResult:
    index: int
    token_ids: list[int]
    reasoning: str | None  # None when the response never entered thinking
    content: str
    finish_reason: str | None
    info: ChoiceThinkcap


def finish_choice(
    tokenizer: Any,
    profile: ThinkProfile,
    params: BudgetParams | None,
    prompt_ids: Sequence[int],
    index: int,
    output_ids: list[int],
    finish_reason: str | None,
    stops: list[str],
) -> ChoiceResult:
    state = replay(profile, params or _NO_BUDGET, prompt_ids, output_ids)
    seg = split_output(state, output_ids)
    reasoning = decode(tokenizer, seg.reasoning_ids) if state.think_start is not None else None
    content = decode(tokenizer, seg.answer_ids)
    if stops and finish_reason == "stop":  # the engine stopped on a string: hide it, as OpenAI does
        if reasoning is not None and not seg.thinking_closed:
            reasoning, _ = trim_at_stop(reasoning, stops)
        else:
            content, _ = trim_at_stop(content, stops)
    info = ChoiceThinkcap(
        num_thinking_tokens=seg.num_thinking_tokens,
        answer_forced=seg.answer_forced,
        boxed_answer=boxed_answer(tokenizer, profile, seg.answer_ids),
        forced_positions=list(state.forced_positions),
    )
    return ChoiceResult(index, output_ids, reasoning, content, finish_reason, info)


def _side(state: ThinkState, pos: int, token_id: int, drop: frozenset[int]) -> str | None:
    """Which part output position `pos` belongs to, after the state advanced over it: the same
    rule as `budget.split_output` (tags, the closing sequence and EOS belong to neither)."""
    if state.think_start is not None and state.think_start <= pos and (state.think_end is None or pos < state.think_end):
        return "reasoning"
    if state.answer_start is not None and pos >= state.answer_start:
        return None if token_id in drop else "answer"
    if state.think_start is None:  # not thinking (yet): plain answer text
        return None if token_id in drop else "answer"
    return None


class ChoiceStream:
    """Live split of one streamed choice into reasoning and answer text deltas."""

    def __init__(self, tokenizer: Any, profile: ThinkProfile, params: BudgetParams | None,
                 prompt_ids: Sequence[int], stops: list[str]):
        self.tokenizer = tokenizer
        self.state = ThinkState(profile, params or _NO_BUDGET, prompt_ids)
        self.ids: list[int] = []
        self.decoders = {"reasoning": IncrementalDecoder(tokenizer), "answer": IncrementalDecoder(tokenizer)}
        self.filters = {"reasoning": StopFilter(stops), "answer": StopFilter(stops)}
        self._drop = frozenset(t for t in (profile.answer_open_id, profile.answer_close_id, *profile.eos_token_ids)
                               if t is not None)

    @property
    def thinking_seen(self) -> bool:
        return self.state.think_start is not None

    def push(self, token_ids: list[int]) -> dict[str, str]:
        """Feed new ids; return the text now final on each side ('reasoning', 'answer')."""
        routed: dict[str, list[int]] = {"reasoning": [], "answer": []}
        for tok in token_ids:
            pos = self.state.num_generated
            self.state.advance(tok)
            self.ids.append(tok)
            side = _side(self.state, pos, tok, self._drop)
            if side is not None:
                routed[side].append(tok)
        return {side: self.filters[side].push(self.decoders[side].push(ids)) for side, ids in routed.items()}

    def finish(self) -> dict[str, str]:
        """Release held-back text at the end of the choice."""
        out = {}
        for side, dec in self.decoders.items():
            out[side] = self.filters[side].push(dec.flush()) + self.filters[side].flush()
        return out

    def info(self) -> ChoiceThinkcap:
        seg = split_output(self.state, self.ids)
        return ChoiceThinkcap(
            num_thinking_tokens=seg.num_thinking_tokens,
            answer_forced=seg.answer_forced,
            boxed_answer=boxed_answer(self.tokenizer, self.state.profile, seg.answer_ids),
            forced_positions=list(self.state.forced_positions),
        )
