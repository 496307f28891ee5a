"""Output token ids → reasoning text, answer text and exact counts.

Everything is derived from ids with the budget core: `budget.replay` re-runs the state machine
the engine's logits processor ran (forcing is a pure function of the ids), `budget.split_output`
cuts reasoning from answer. Streaming feeds each new id to a live `ThinkState` and routes it with
the same rule (`budget.output_side`), so both paths agree token for token. (One exception: text
an unbudgeted model writes *before* opening `<think>` itself is streamed as content, since nobody
knows yet that thinking follows; the finished split leaves it out.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budget import BudgetParams, Segments, boxed_ids, ThinkProfile, ThinkState, hidden_ids, output_side, replay, split_output
from serving.responses import ChoiceThinkcap
from serving.textstream import IncrementalDecoder, StopFilter, decode, trim_at_stop

_NO_BUDGET = BudgetParams()  # still tracks <think> spans when the request set no budget


def boxed_answer(tokenizer: Any, profile: ThinkProfile, answer_ids: Sequence[int]) -> str | None:
    """Text of the last `<|begin_of_box|>...<|end_of_box|>` in the answer (ids, not regexes)."""
    ids = boxed_ids(profile, answer_ids)
    return None if ids is None else decode(tokenizer, ids).strip()


@dataclass(frozen=True)
class ChoiceResult:
    index: int
    token_ids: list[int]
    reasoning: str | None  # None when the response never entered thinking
    content: str
    finish_reason: str | None
    info: ChoiceThinkcap


def choice_info(tokenizer: Any, state: ThinkState, seg: Segments) -> ChoiceThinkcap:
    return ChoiceThinkcap(
        num_thinking_tokens=seg.num_thinking_tokens,
        num_answer_tokens=len(seg.answer_ids),
        answer_forced=seg.answer_forced,
        boxed_answer=boxed_answer(tokenizer, state.profile, seg.answer_ids),
        forced_positions=list(state.forced_positions),
    )


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
    return ChoiceResult(index, output_ids, reasoning, content, finish_reason, choice_info(tokenizer, state, seg))


class ChoiceStream:
    """Live split of one streamed choice into reasoning and answer text deltas."""

    def __init__(self, tokenizer: Any, profile: ThinkProfile, params: BudgetParams | None,
                 prompt_ids: Sequence[int], stops: list[str]):
        self.tokenizer = tokenizer
        self.state = ThinkState(profile, params or _NO_BUDGET, prompt_ids)
        self.ids: list[int] = []
        self.decoders = {"reasoning": IncrementalDecoder(tokenizer), "answer": IncrementalDecoder(tokenizer)}
        self.filters = {"reasoning": StopFilter(stops), "answer": StopFilter(stops)}
        self._hidden = hidden_ids(profile)

    def push(self, token_ids: list[int]) -> dict[str, str]:
        """Feed new ids; return the text now final on each side ('reasoning', 'answer')."""
        routed: dict[str, list[int]] = {"reasoning": [], "answer": []}
        for tok in token_ids:
            pos = self.state.num_generated
            self.state.advance(tok)
            self.ids.append(tok)
            # Decided as each id arrives: the same rule as `split_output` on the whole output.
            side = output_side(self.state, pos, tok, self._hidden)
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
        return choice_info(self.tokenizer, self.state, split_output(self.state, self.ids))
