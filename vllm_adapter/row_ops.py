"""The V1 processor's bulk per-step ops on sets of rows: the EOS redirect on watched rows
(`answer_required`) and the grace lane. Each runs as a few flat-index tensor ops on the logits,
with the index tensors rebuilt only when the set of rows changes (`BudgetRows` hands out the same
list objects until then), so a step costs no per-row Python.

Flat indices (`row * V + id` into `logits.view(-1)`) because on CPU one `index_select`/
`index_fill_` on a 1-D view costs about half of the same op through a 2-D index pair; a logits
tensor that is not contiguous (never seen from vLLM) takes the 2-D path.
"""

from __future__ import annotations

from typing import Any

import torch

from budget import ThinkProfile
from budget.state import CLOSE_TOP_K
from vllm_adapter import processor_common as common
from vllm_adapter.budget_rows import BudgetRows, StepPlan

NEG_INF = float("-inf")


def flat_index(rows: torch.Tensor, cols: torch.Tensor, width: int) -> torch.Tensor:
    """rows [R, 1] x cols [1, C] -> flat positions [R, C] in a contiguous [B, width] tensor."""
    return rows * width + cols


class Redirect:
    """EOS → close tag on the watched rows (`answer_required`): the close tag's logit is raised to
    the highest EOS logit and EOS goes to -inf, so wherever an EOS would have been the top choice
    the close tag is (greedy: exactly the model's own stream up to that point). Not the sum of
    their probabilities: several EOS ids together would then outrank a token the model preferred
    to each of them."""

    def __init__(self, profile: ThinkProfile, device: Any):
        self.device = device
        self.close = profile.think_close_id
        self.cols = torch.tensor([profile.think_close_id, *sorted(profile.eos_token_ids)], device=device)  # [1+E]
        # The rows list object itself, not its id(): a freed list's id can come back on a new one.
        self._key: tuple[list[int], int] | None = None
        self._grid: tuple[torch.Tensor, torch.Tensor] | None = None
        self._flat = self._flat_close = self._flat_eos = None

    def __call__(self, logits: torch.Tensor, rows: list[int]) -> None:
        width = logits.shape[1]
        if self._key is None or self._key[0] is not rows or self._key[1] != width:
            self._key = (rows, width)
            rows_t = common.h2d(rows, self.device)[:, None]  # [W, 1]
            self._grid = (rows_t, self.cols[None, :])  # [W, 1+E] index pair
            self._flat = flat_index(rows_t, self.cols[None, :], width)  # [W, 1+E]
            self._flat_close = self._flat[:, 0].contiguous()  # [W]
            self._flat_eos = self._flat[:, 1:].reshape(-1)  # [W * E]
        if not logits.is_contiguous():
            redirect_eos(logits, self._grid, self.close)
            return
        flat = logits.view(-1)
        merged = flat.take(self._flat).amax(dim=-1)  # [W]  (take: a third of the cost of flat[idx] here)
        flat.index_fill_(0, self._flat_eos, NEG_INF)
        flat.index_copy_(0, self._flat_close, merged)


def redirect_eos(logits: torch.Tensor, grid: tuple[torch.Tensor, torch.Tensor], close: int) -> None:
    """The EOS → close op through a 2-D index pair: `grid` = (rows [W, 1], [close, *EOS] [1, 1+E]).
    (The V2 path applies the same values as a masked write over flagged rows: `processor_v2.DeviceWatch`.)"""
    merged = logits[grid].amax(dim=-1)  # [W]
    logits[grid] = NEG_INF
    logits[grid[0][:, 0], close] = merged


class GraceLane:
    """The rows inside their grace window, in bulk: the few whose close tag is in their top
    `CLOSE_TOP_K` close now (`BudgetRows.close_now`) and the rest get the close tag (and EOS)
    masked by one store.

    The rank test is exact and mostly cheap: a row is cleared as soon as `CLOSE_TOP_K` ids of a
    small probe set (the lane's highest-scoring ids when it was formed) beat its close tag; only
    the rows the probes cannot clear are compared over the whole vocabulary. Mid-thought the close
    tag sits far down, so that full pass is rare."""

    PROBES = 32

    def __init__(self, profile: ThinkProfile, device: Any):
        self.device = device
        self.close = profile.think_close_id
        self._key: tuple[list[int], int] | None = None  # the list object (see `Redirect`)
        self._rows: torch.Tensor | None = None
        self._masked_rows = self._masked_ids = self._flat_masked = None

    def _rebuild(self, plan: StepPlan, width: int) -> None:
        self._key = (plan.grace, width)
        self._rows = common.h2d(plan.grace, self.device)  # [G]
        masked_rows, masked_ids = zip(*plan.grace_masked)
        self._masked_rows = common.h2d(list(masked_rows), self.device)  # [M]
        self._masked_ids = common.h2d(list(masked_ids), self.device)  # [M]
        self._flat_masked = flat_index(self._masked_rows, self._masked_ids, width)  # [M]
        self._flat_close = self._rows * width + self.close  # [G]
        self._flat_probes = None  # chosen from the lane's first logits

    def _close_in_top_k(self, logits: torch.Tensor) -> list[int]:
        """Positions in the lane (not batch rows) whose close tag ranks in the top k."""
        if not logits.is_contiguous():  # the plain full comparison
            sub = logits.index_select(0, self._rows)  # [G, V]
            above = torch.gt(sub, sub[:, self.close : self.close + 1]).sum(dim=-1, dtype=torch.int32)  # [G]
            return torch.nonzero(above < CLOSE_TOP_K).flatten().tolist()
        flat = logits.view(-1)
        if self._flat_probes is None:
            width = logits.shape[1]
            top = logits.index_select(0, self._rows).amax(dim=0).topk(min(self.PROBES, width)).indices  # [P]
            self._flat_probes = flat_index(self._rows[:, None], top[None, :], width)  # [G, P]
        close = flat.take(self._flat_close)  # [G]
        beaten = torch.gt(flat.take(self._flat_probes), close[:, None]).sum(dim=-1, dtype=torch.int32)  # [G]
        unsure = torch.nonzero(beaten < CLOSE_TOP_K).flatten()  # [U]: one sync; usually empty
        if not unsure.numel():
            return []
        sub = logits.index_select(0, self._rows[unsure])  # [U, V]
        above = torch.gt(sub, close[unsure, None]).sum(dim=-1, dtype=torch.int32)  # [U]
        return unsure[above < CLOSE_TOP_K].tolist()

    def __call__(self, logits: torch.Tensor, plan: StepPlan, rows: BudgetRows) -> None:
        if self._key is None or self._key[0] is not plan.grace or self._key[1] != logits.shape[1]:
            self._rebuild(plan, logits.shape[1])
        hits = self._close_in_top_k(logits)
        if not hits:
            if logits.is_contiguous():
                logits.view(-1).index_fill_(0, self._flat_masked, NEG_INF)
            else:
                logits[self._masked_rows, self._masked_ids] = NEG_INF
            return
        closing = {plan.grace[h] for h in hits}
        for index in closing:
            rows.close_now(index, plan)
        plan.masked.extend(pair for pair in plan.grace_masked if pair[0] not in closing)
