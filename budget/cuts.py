"""One thought, cut at several budgets: which budget is answered from which cut (pure; the demo's
Compare and `thinkcap eval --ladder` both use it over HTTP).

A budget at or above the thought's length holds all of it and reuses the thought's own answer; a
smaller budget keeps the thought's first `budget` tokens and gets its answer forced there. A cut is
answered by sending `<think>` + the cut text as the assistant's unfinished reply (`CONTINUE`) with
budget 0: the server sees thinking open in the prompt and forces its own closing sequence at once.
(Writing the closing sequence into the message does not work with GLM-4.1V's chat template, which
keeps only the text after `</think>` of an assistant message.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from budget.hint import append_line

THINK_OPEN = "<think>"
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


@dataclass(frozen=True)
class Cut:
    """What one budget keeps of the shared thought."""

    budget: int | None  # None: unlimited
    tokens: int  # thinking tokens kept
    forced: bool  # its answer is forced at the cut (or the shared thought was forced itself)
    cut: bool  # True: answered by its own request at the cut; False: the shared thought's answer


def thought_budget(budgets: Sequence[int | None]) -> int | None:
    """The budget the shared thought is generated at: the largest, or unlimited if any is."""
    return None if None in budgets else max(b for b in budgets if b is not None)


def plan_cuts(budgets: Sequence[int | None], thought_tokens: int, thought_forced: bool) -> list[Cut]:
    """Per budget: cut the shared thought of `thought_tokens`, or reuse it when the budget holds it all."""
    return [Cut(b, b, True, True) if b is not None and b < thought_tokens else Cut(b, thought_tokens, thought_forced, False)
            for b in budgets]


def cut_messages(messages: list[dict], cut_thought: str, budget_hint: str | None = None) -> list[dict]:
    """The conversation with the cut thought as the assistant's unfinished reply (send with `CONTINUE`).
    `budget_hint`: the hint the thought's own response reported (`thinkcap.budget_hint`): put back
    where the server put it, so the cut is answered under the prompt the thought was written under
    (the server does not hint a continued message itself)."""
    if budget_hint:
        messages = append_line(messages, budget_hint)
    return [*messages, {"role": "assistant", "content": THINK_OPEN + cut_thought}]
