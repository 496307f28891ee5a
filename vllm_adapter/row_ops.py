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

    The rank test is exact and mostly cheap: a row is cleared as soon as `CLOSE_TOP_K` of its
    probe ids beat its close tag; only the rows their probes cannot clear are compared over the
    whole vocabulary. A row's probes are its own highest-scoring ids when it joined the lane (or
    when its probes last failed): a thought's likely next tokens stay high from step to step, and
    mid-thought the close tag sits far down, so the full pass is rare. Probes are kept per row
    while other rows come and go, since choosing them is a pass over the row's vocabulary, and
    they are few, since each is a scattered read (a cache miss on a real vocabulary)."""

    PROBES = 8

    def __init__(self, profile: ThinkProfile, device: Any):
        self.device = device
        self.close = profile.think_close_id
        self._key: tuple[list[int], int] | None = None  # the list object (see `Redirect`)
        self._lane: list[int] = []  # batch rows, as in `_rows`
        self._rows: torch.Tensor | None = None  # [G]
        self._masked_rows = self._masked_ids = self._flat_masked = None
        self._probes: torch.Tensor | None = None  # [G, P]: each lane row's probe ids
        self._kept: dict[int, torch.Tensor] = {}  # batch row -> its probe ids [P], across lane changes
        self._flat_probes: torch.Tensor | None = None  # [G, 1+P]: the close tag, then the probes

    def _rebuild(self, plan: StepPlan, width: int) -> None:
        if self._key is None or self._key[1] != width:
            self._kept = {}  # probe ids of another vocabulary width mean nothing here
        elif self._probes is not None:  # the current lane's probes, refreshed ones included
            self._kept = dict(zip(self._lane, self._probes))
        self._key = (plan.grace, width)
        self._lane = list(plan.grace)
        self._rows = common.h2d(plan.grace, self.device)  # [G]
        masked_rows, masked_ids = zip(*plan.grace_masked)
        self._masked_rows = common.h2d(list(masked_rows), self.device)  # [M]
        self._masked_ids = common.h2d(list(masked_ids), self.device)  # [M]
        self._flat_masked = flat_index(self._masked_rows, self._masked_ids, width)  # [M]
        self._probes = self._flat_probes = None

    def _place_probes(self, logits: torch.Tensor) -> None:
        """Probe ids for the rows that have none yet (their own top ids), then the flat gather index."""
        width = logits.shape[1]
        missing = [i for i, row in enumerate(self._lane) if row not in self._kept]
        if missing:
            sub = logits.index_select(0, self._rows[missing])  # [J, V]
            top = sub.topk(min(self.PROBES, width), dim=-1).indices  # [J, P]
            self._kept.update(zip((self._lane[i] for i in missing), top))
        self._probes = torch.stack([self._kept[row] for row in self._lane])  # [G, P]
        cols = torch.cat([self._probes.new_full((len(self._lane), 1), self.close), self._probes], dim=1)  # [G, 1+P]
        self._flat_probes = flat_index(self._rows[:, None], cols, width)  # [G, 1+P]

    def _close_in_top_k(self, logits: torch.Tensor) -> list[int]:
        """Positions in the lane (not batch rows) whose close tag ranks in the top k.

        Few ops on purpose: right after the forward pass every distinct tensor op runs cold (about
        5-10 us each on CPU however small its input), so the common step (no row near closing) is
        one gather, one compare, one sum and one min read back."""
        if not logits.is_contiguous():  # the plain full comparison
            sub = logits.index_select(0, self._rows)  # [G, V]
            above = torch.gt(sub, sub[:, self.close : self.close + 1]).sum(dim=-1, dtype=torch.int32)  # [G]
            return torch.nonzero(above < CLOSE_TOP_K).flatten().tolist()
        flat = logits.view(-1)
        if self._flat_probes is None:
            self._place_probes(logits)
        probed = flat.take(self._flat_probes)  # [G, 1+P]
        beaten = torch.gt(probed, probed[:, :1]).sum(dim=-1, dtype=torch.int32)  # [G] (never beaten by itself)
        if beaten.min().item() >= CLOSE_TOP_K:  # the one sync; the usual answer
            return []
        unsure = torch.nonzero(beaten < CLOSE_TOP_K).flatten()  # [U]
        sub = logits.index_select(0, self._rows[unsure])  # [U, V]
        above = torch.gt(sub, probed[unsure, :1]).sum(dim=-1, dtype=torch.int32)  # [U]
        # These rows' probes failed: their own top ids now, for the next steps.
        fresh = sub.topk(self._probes.shape[1], dim=-1).indices  # [U, P]
        self._probes[unsure] = fresh
        self._flat_probes[unsure, 1:] = flat_index(self._rows[unsure, None], fresh, logits.shape[1])
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
