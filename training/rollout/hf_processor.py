"""Hugging Face `LogitsProcessor` adapter of the budget core, so `model.generate` obeys budgets.

Used by training when vLLM is unavailable, and by anyone calling `generate` directly. One
`ThinkState` per batch row; rows without a budget are skipped entirely.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from budget import BudgetParams, ThinkProfile, ThinkState


class HFThinkBudgetProcessor(LogitsProcessor):
    """Pass one `BudgetParams | None` and the un-padded prompt ids per batch row.

    With `num_return_sequences=n`, give the per-prompt lists and `num_return_sequences=n`: HF
    repeats each prompt n times in a row, and so do we.
    """

    def __init__(
        self,
        profile: ThinkProfile,
        params: Sequence[BudgetParams | None],
        prompt_ids: Sequence[Sequence[int]],
        num_return_sequences: int = 1,
    ):
        if len(params) != len(prompt_ids):
            raise ValueError(f"got {len(params)} params for {len(prompt_ids)} prompts")
        self.profile = profile
        self.states: list[ThinkState | None] = [
            ThinkState(profile, p, ids) if p is not None and p.active else None
            for p, ids in zip(params, prompt_ids)
            for _ in range(num_return_sequences)
        ]
        self._seen_len: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.states):
            raise ValueError(f"batch has {input_ids.shape[0]} rows, processor was built for {len(self.states)}")
        if self._seen_len is not None:  # first call sees the prompt only; later calls one new token
            last = input_ids[:, -1].tolist()  # [B]
            for row, state in enumerate(self.states):
                if state is not None and not state.finished:
                    state.advance(last[row])
        self._seen_len = input_ids.shape[1]
        for row, state in enumerate(self.states):
            if state is None or state.finished:
                continue
            forced = state.forced_token()
            if forced is None:
                banned = state.suppressed_ids()
                if not banned:
                    continue
                if int(scores[row].argmax()) in banned:
                    forced = state.request_continuation()
                if forced is None:
                    scores[row, list(banned)] = -float("inf")
                    continue
            scores[row] = -float("inf")  # [V]
            scores[row, forced] = 0.0
        return scores
