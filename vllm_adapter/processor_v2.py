"""The think-budget logits processor for vLLM's Model Runner V2 (`vllm.v1.worker.gpu`).

vLLM builds it as `ThinkBudgetLogitsProcessor(vllm_config, req_states)` (the entry point class
hands V2 construction over to this class, see `processor.py`). Interface, read from vLLM 0.32:
`add_request(slot, params)` when a request takes a recycled slot (new or resumed after
preemption), `apply_staged_writes()` once per step, `apply(logits, ctx)` on every logits row of
the batch (rows reordered every step, one row per draft token under speculative decoding).

Cost per step, with B rows: one numpy compare over B host values decides whether any budgeted
row could owe something (`BudgetSlots.due`); nearly every step ends there. Only when a row is
due does it read the due rows' new committed tokens back in one device-to-host copy (the V2
runner keeps them on the device) and write the forced/masked entries in one indexed store each.
The decisions are `budget.ThinkState`'s, exactly as in the V1 path.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsContext, LogitsProcessor, LogitsProcRequestState

from budget import BudgetError, ProfileError, ThinkProfile, params_from_args
from vllm_adapter.budget_rows import StepPlan
from vllm_adapter.budget_slots import BudgetSlots

if TYPE_CHECKING:
    from vllm.config import VllmConfig

log = logging.getLogger(__name__)


class ThinkBudgetV2Processor(LogitsProcessor):
    def __init__(self, vllm_config: VllmConfig, req_states: LogitsProcRequestState):
        from vllm_adapter import processor as v1  # shared owner registry and profile lookup

        self.vllm_config = vllm_config
        self.req_states = req_states
        self.device = req_states.device
        self.vocab_size = req_states.vocab_size
        self.slots: BudgetSlots | None = None
        self.profile: ThinkProfile | None = None
        # `logits_processors=` next to the entry point builds a second instance: it stays idle.
        self.owner = v1._OWNERS.setdefault(id(vllm_config), self) is self
        if not self.owner:
            log.info("think budget: a second processor instance for this engine stays idle")
            return
        try:
            self.profile = v1.model_profile(vllm_config)
        except ProfileError as e:
            log.info("think budget disabled for %s: %s", vllm_config.model_config.model, e)
            return
        self.slots = BudgetSlots(self.profile, req_states.max_num_reqs)
        self._max_len = req_states.all_token_ids.gpu.shape[1]

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        from vllm_adapter.processor import ThinkBudgetLogitsProcessor

        ThinkBudgetLogitsProcessor.validate_params(sampling_params)  # the V1 path's checks and messages

    def check_ids(self, params) -> None:
        from vllm_adapter.processor import check_ids

        check_ids(self.profile, self.vocab_size, params)

    # ---- vLLM V2 interface ----------------------------------------------------------------------
    def add_request(self, req_idx: int, sampling_params: SamplingParams) -> bool:
        if self.slots is not None:
            self.slots.drop(req_idx)  # the slot's previous occupant, whatever it was
        if not self.owner:
            return False
        try:
            params = params_from_args(sampling_params.extra_args)
        except BudgetError:
            params = None  # validate_params refused it at admission; never fail in the engine
        if params is None:
            return False
        if self.slots is None:
            log.warning("think_budget ignored: %s has no think tokens", self.vllm_config.model_config.model)
            return False
        try:
            self.check_ids(params)
        except ValueError as e:
            log.warning("think_budget ignored for a request: %s", e)
            return False
        self.slots.add(req_idx, params, sampling_params.max_tokens)
        return True

    def apply(self, logits: torch.Tensor, ctx: LogitsContext) -> torch.Tensor:
        slots = self.slots
        if not slots:
            return logits
        batch = ctx.idx_mapping_np  # [R] batch position -> slot
        bound = ctx.seq_lens_upper_bound_np[: len(batch)]  # [R] >= every row's sample position
        due = slots.due(batch, bound)  # [R]
        if not due.any():
            return logits
        at = np.flatnonzero(due)  # [D] batch positions of the due slots
        plan, redirect = self._plan(logits, ctx, batch[at], bound[at], at)
        if redirect:
            self._redirect_eos(logits, redirect)
        if plan:
            from vllm_adapter.processor import write_plan

            write_plan(logits, plan, logits.device)
        return logits

    # ---- internals --------------------------------------------------------------------------------
    def _plan(self, logits: torch.Tensor, ctx: LogitsContext, due: np.ndarray, bound: np.ndarray,
              at: np.ndarray) -> tuple[StepPlan, list[int]]:
        slots = self.slots
        rs = self.req_states
        prefill_len = rs.prefill_len.np[due]  # [D] host
        prompt_len = rs.prompt_len.np[due]  # [D] host
        spec = logits.shape[0] != len(ctx.idx_mapping_np)
        # One device->host copy: total_len of each due slot, its unread history (positions
        # [read_from, max(bound, prefill_len)) cover total_len), and under speculative decoding
        # the row layout and draft tokens.
        lo = np.array([slots.read_from(int(i)) for i in due], dtype=np.int64)  # [D]
        hi = np.minimum(np.maximum(bound, prefill_len), self._max_len).astype(np.int64)  # [D]
        lens = np.maximum(hi - lo, 0)
        flat = _ranges(due.astype(np.int64) * self._max_len + lo, lens)  # [sum(lens)]
        parts = [rs.total_len.gpu[torch.from_numpy(due).to(self.device)].long(),  # [D]
                 rs.all_token_ids.gpu.reshape(-1)[torch.from_numpy(flat).to(self.device)].long()]  # [H]
        if spec:
            parts += [ctx.expanded_idx_mapping.long(), ctx.expanded_local_pos.long(), ctx.input_ids.long()]  # [N] x3
        host = torch.cat(parts).cpu().numpy()
        total_len = host[: len(due)]
        history = np.split(host[len(due): len(due) + flat.size], np.cumsum(lens)[:-1])
        if spec:
            n = logits.shape[0]
            row_slot, local, inputs = host[-3 * n:].reshape(3, n)  # [N] each
        plan, redirect = StepPlan(), []
        live: dict[int, int] = {}  # slot -> its batch position
        for k, idx in enumerate(due.tolist()):
            read = history[k][: total_len[k] - lo[k]]
            if not slots.catch_up(idx, read.tolist(), int(prompt_len[k])):
                continue
            if bound[k] < prefill_len[k]:  # a chunked-prefill row: its sample is discarded
                slots.wake[idx] = prefill_len[k]
                continue
            live[idx] = int(at[k])
        if not live:
            return plan, redirect
        if spec:
            rows_of = {idx: np.flatnonzero(row_slot == idx) for idx in live}  # [k+1] rows of each slot
        else:  # one row per request: row = batch position
            rows_of = {idx: [b] for idx, b in live.items()}
        asks = self._asks(logits, [r for idx in live if slots.wants_logits(idx) for r in rows_of[idx]])
        for idx in live:
            rows, drafts = rows_of[idx], ()
            if spec:  # rows in local order; row j's context ends with the drafts of rows 1..j
                rows = rows[np.argsort(local[rows], kind="stable")]
                drafts = inputs[rows[1:]].tolist()
                rows = rows.tolist()
            slots.decide(idx, rows, drafts, asks.__getitem__, plan, redirect)
        return plan, redirect

    def _asks(self, logits: torch.Tensor, rows: list[int]) -> dict[int, tuple[int, int]]:
        """(top choice, rank of the close tag) on the rows that may need the model's preference
        (min-think continuation, grace window): one small read for all of them."""
        if not rows:
            return {}
        sub = logits[torch.tensor(rows, device=logits.device)]  # [A, V]
        close = self.profile.think_close_id
        rank = (sub > sub[:, close : close + 1]).sum(dim=-1)  # [A]
        both = torch.stack([sub.argmax(dim=-1), rank]).tolist()  # [2, A]
        return dict(zip(rows, zip(*both)))

    def _redirect_eos(self, logits: torch.Tensor, rows: list[int]) -> None:
        """`answer_required`: an EOS the model would pick becomes the close tag (the V1 path's op,
        `processor.redirect_eos`: close logit = max(close, EOS...), EOS -> -inf)."""
        from vllm_adapter.processor import redirect_eos

        close = self.profile.think_close_id
        cols = torch.tensor([close, *sorted(self.profile.eos_token_ids)], device=logits.device)  # [1+E]
        redirect_eos(logits, (torch.tensor(rows, device=logits.device)[:, None], cols[None, :]), close)


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[i], starts[i] + lens[i]) without a Python loop."""
    total = int(lens.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)  # [H] position within each range
    return np.repeat(starts, lens) + offsets


def is_v2_construction(device: Any, is_pin_memory: bool | None) -> bool:
    """The V2 runner builds processors with (vllm_config, req_states); V1 with three arguments."""
    return is_pin_memory is None and isinstance(device, LogitsProcRequestState)
