"""vLLM logits processor that enforces per-request thinking budgets (V1 model runner).

Per-request arguments travel in `SamplingParams.extra_args` (`vllm_xargs` over HTTP):
`think_budget`, `min_think_tokens`, `think_budget_message_ids`, `think_budget_grace`, `think_budget_action`, `answer_required`, `think_continuation_ids`,
`open_thinking`, `answer_reserve` — see `budget.params` and `budget.resolve`. The decisions come from `budget.ThinkState`; this class only maps them onto
logits rows. Bookkeeping is in `vllm_adapter.budget_rows`, which keeps unbudgeted rows free and
budgeted rows O(1) amortized per step.

vLLM loads the class through the `vllm.logits_processors` entry point of this package, and our
server also passes it with `logits_processors=` (needed for correct output ids under async
scheduling, vllm#52461). vLLM then builds two instances for one engine; the first one built
owns the engine's rows and any later one stays idle, so budgets are enforced exactly once.

The same class serves vLLM's Model Runner V2 (the GPU default since 0.32): it subclasses the V2
interface too, so the V2 loader accepts the entry point, and V2's two-argument construction
`(vllm_config, req_states)` returns a `processor_v2.ThinkBudgetV2Processor`, which enforces the
same budgets through V2's per-slot interface. One installed package, both runners.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as V2LogitsProcessor

try:
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality
    _RUNNER_BASES: tuple[type, ...] = (LogitsProcessor, V2LogitsProcessor)
except ImportError:  # vLLM >= 0.34 removed the V1 model runner and its processor interface
    _RUNNER_BASES = (V2LogitsProcessor,)

from budget import BudgetError, BudgetParams, ThinkProfile, enforces, params_from_args, resolve_params
from vllm_adapter import processor_common as common
from vllm_adapter.budget_rows import BudgetRows
from vllm_adapter.processor_v2 import ThinkBudgetV2Processor, is_v2_construction
from vllm_adapter.row_ops import GraceLane, Redirect

if TYPE_CHECKING:
    from vllm.config import VllmConfig

log = logging.getLogger(__name__)


class ThinkBudgetLogitsProcessor(*_RUNNER_BASES):
    def __new__(cls, vllm_config: VllmConfig, device: Any = None, is_pin_memory: bool | None = None):
        """V2 runner: (vllm_config, req_states) builds the V2 path (`processor_v2`)."""
        if is_v2_construction(device, is_pin_memory):
            return ThinkBudgetV2Processor(vllm_config, device)
        return super().__new__(cls)

    def __init__(self, vllm_config: VllmConfig, device: torch.device | Any, is_pin_memory: bool | None = None):
        """V1 runner: (vllm_config, device, is_pin_memory)."""
        self.vllm_config = vllm_config
        self.device = device
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.rows: BudgetRows | None = None
        self.profile: ThinkProfile | None = None
        self.owner, self.profile = common.claim(self, vllm_config)
        if self.profile is None:
            return
        self.rows = BudgetRows(self.profile)
        self.redirect = Redirect(self.profile, device)
        self.grace = GraceLane(self.profile, device)

    # ---- request admission ------------------------------------------------------------------
    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        common.validate_params(sampling_params)  # one check, one message set, for both runners

    def check_ids(self, params: BudgetParams) -> None:
        assert self.profile is not None
        common.check_ids(self.profile, self.vocab_size, params)

    # ---- vLLM interface ---------------------------------------------------------------------
    def is_argmax_invariant(self) -> bool:
        return False  # forcing changes the greedy choice

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None or not self.owner:
            return
        rows = self.rows  # None for a model without think tokens: adds are still checked (warning)
        # vLLM's order: removed, added, moved. An added index may reuse a removed slot.
        for index in batch_update.removed if rows is not None else ():
            rows.remove(index)
        for index, sampling_params, prompt_ids, output_ids in batch_update.added:
            self._add(index, sampling_params, prompt_ids, output_ids)
        for src, dst, direction in batch_update.moved if rows is not None else ():
            rows.move(src, dst, swap=direction == MoveDirectionality.SWAP)

    def apply(self, logits: torch.Tensor, ctx: Any = None) -> torch.Tensor:
        """V1: the batch's logits [B, V], row i = batch index i."""
        if self.rows is None or not self.rows:
            return logits
        plan = self.rows.step()
        if not plan:
            return logits
        if plan.ask_top:
            asked = plan.ask_top
            top = logits[[row.index for row in asked]].argmax(dim=-1).tolist()  # [A]
            for row, top_id in zip(asked, top):
                self.rows.top_choice(row, top_id, plan)
        if plan.grace:
            self.grace(logits, plan, self.rows)
        if plan.redirect:
            self.redirect(logits, plan.redirect)
        common.write_plan(logits, plan, self.device)
        return logits

    # ---- internals --------------------------------------------------------------------------
    def _add(self, index: int, sampling_params: SamplingParams, prompt_ids: list[int] | None, output_ids: list[int]) -> None:
        try:
            params = params_from_args(sampling_params.extra_args)
        except BudgetError:
            params = None  # validate_params already refused it; never fail inside the engine
        if self.rows is None:
            if params is not None and self.owner:
                log.warning("think_budget ignored: %s has no think tokens", self.vllm_config.model_config.model)
            return
        # The answer reserve needs the engine's final max_tokens and the prompt (see budget.resolve).
        params = resolve_params(self.rows.profile, params, prompt_ids or (), sampling_params.max_tokens)
        if not enforces(params):
            self.rows.remove(index)  # the slot's previous occupant, if any, is gone
            return
        try:
            self.check_ids(params)
        except ValueError as e:
            log.warning("think_budget ignored for a request: %s", e)
            self.rows.remove(index)
            return
        self.rows.add(index, params, prompt_ids, output_ids)
