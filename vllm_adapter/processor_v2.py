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

`answer_required` (on by default) asks something of every freely thinking row on every step: its
EOS becomes the close tag. That duty stays on the device (`DeviceWatch`): a per-slot flag that
follows the committed tokens and the drafts there, and one masked op on the flagged rows. A
watched row costs no host work and no device-to-host copy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsContext, LogitsProcessor, LogitsProcRequestState

from budget import BudgetError, BudgetParams, ThinkProfile, params_from_args
from vllm_adapter import processor_common as common
from vllm_adapter.budget_rows import StepPlan
from vllm_adapter.budget_slots import BudgetSlots, Watch

if TYPE_CHECKING:
    from vllm.config import VllmConfig

log = logging.getLogger(__name__)


class ThinkBudgetV2Processor(LogitsProcessor):
    def __init__(self, vllm_config: VllmConfig, req_states: LogitsProcRequestState):
        self.vllm_config = vllm_config
        self.req_states = req_states
        self.device = req_states.device
        self.vocab_size = req_states.vocab_size
        self.slots: BudgetSlots | None = None
        self.profile: ThinkProfile | None = None
        self.owner, self.profile = common.claim(self, vllm_config)
        if self.profile is None:
            return
        self.slots = BudgetSlots(self.profile, req_states.max_num_reqs)
        self._max_len = req_states.all_token_ids.gpu.shape[1]
        spec = getattr(getattr(vllm_config, "speculative_config", None), "num_speculative_tokens", None)
        self.watch = DeviceWatch(self.profile, req_states, spec)

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        common.validate_params(sampling_params)  # the V1 path's checks and messages

    def check_ids(self, params: BudgetParams) -> None:
        common.check_ids(self.profile, self.vocab_size, params)

    # ---- vLLM V2 interface ----------------------------------------------------------------------
    def add_request(self, req_idx: int, sampling_params: SamplingParams) -> bool:
        if self.slots is not None:
            self.slots.drop(req_idx)  # the slot's previous occupant, whatever it was
            self.watch.drop(req_idx)
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
        watching = self.watch.begin(logits, ctx)  # the watch follows last step's tokens first
        due = slots.due(batch, bound)  # [R]
        if not due.any():
            if watching:
                self.watch.apply(logits, ctx, ())
            return logits
        at = np.flatnonzero(due)  # [D] batch positions of the due slots
        plan, rows = self._plan(logits, ctx, batch[at], bound[at], at)
        if watching or rows or self.watch.on[batch[at]].any():  # the visits may have set flags
            self.watch.apply(logits, ctx, rows)
        if plan:
            common.write_plan(logits, plan, logits.device)
        return logits

    # ---- internals --------------------------------------------------------------------------------
    def _plan(self, logits: torch.Tensor, ctx: LogitsContext, due: np.ndarray, bound: np.ndarray,
              at: np.ndarray) -> tuple[StepPlan, list[tuple[int, int]]]:
        """Catch the due slots up, set their watch flags, plan their rows. Returns the plan and
        the (row, `Watch` flag) of every row planned here."""
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
        due_t = torch.from_numpy(due).to(self.device)  # [D]
        parts = [rs.total_len.gpu[due_t].long(),  # [D]
                 rs.all_token_ids.gpu.reshape(-1)[torch.from_numpy(flat).to(self.device)].long()]  # [H]
        if spec:
            parts += [ctx.expanded_idx_mapping.long(), ctx.expanded_local_pos.long(), ctx.input_ids.long()]  # [N] x3
        host = torch.cat(parts).cpu().numpy()
        total_len = host[: len(due)]
        history = np.split(host[len(due): len(due) + flat.size], np.cumsum(lens)[:-1])
        if spec:
            n = logits.shape[0]
            row_slot, local, inputs = host[-3 * n:].reshape(3, n)  # [N] each
        plan, rows_watch = StepPlan(), []
        live: dict[int, int] = {}  # slot -> its batch position
        flags = []
        for k, idx in enumerate(due.tolist()):
            read = history[k][: total_len[k] - lo[k]]
            if not slots.catch_up(idx, read.tolist(), int(prompt_len[k])):
                flags.append(Watch.FREE)
                continue
            flags.append(slots.flag(idx))
            if bound[k] < prefill_len[k]:  # a chunked-prefill row: its sample is discarded
                slots.wake[idx] = prefill_len[k]
                continue
            live[idx] = int(at[k])
        self.watch.set(due, due_t, flags)
        if not live:
            return plan, rows_watch
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
            slots.decide(idx, rows, drafts, asks.__getitem__, plan, rows_watch)
        return plan, rows_watch

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


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[i], starts[i] + lens[i]) without a Python loop."""
    total = int(lens.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)  # [H] position within each range
    return np.repeat(starts, lens) + offsets


def is_v2_construction(device: Any, is_pin_memory: bool | None) -> bool:
    """The V2 runner builds processors with (vllm_config, req_states); V1 with three arguments."""
    return is_pin_memory is None and isinstance(device, LogitsProcRequestState)


class DeviceWatch:
    """The `answer_required` duty of every budgeted slot, kept on the device (`budget_slots.Watch`).

    `flags` [S] follows each slot's committed tokens: `<think>` turns BEFORE into REDIRECT, the
    model's own `</think>` turns REDIRECT into GUARD, the first visible answer token ends GUARD
    (`ThinkState.advance` on those ids). Those are the only transitions between two host visits:
    anything else a token can start (forcing, grace, min-think) is at a position the host wakes
    for (`tokens_until_action`), and the host's visit overwrites the flag from the state. Per step:
    a scan of the slots' new committed ids, the flags carried along the draft rows, and one masked
    write on a few logits columns: the redirect (V1's op) on REDIRECT rows, -inf on EOS and the
    answer-close tag on GUARD rows. No host read, no Python loop over rows: a fixed handful of
    small tensor ops, whatever the batch.
    """

    # token classes for the transition table
    OTHER, OPEN, CLOSE, EOS, QUIET = range(5)

    def __init__(self, profile: ThinkProfile, req_states: LogitsProcRequestState, spec: int | None):
        device = req_states.device
        self.rs = req_states
        self.flags = torch.zeros(req_states.max_num_reqs, dtype=torch.long, device=device)  # [S]
        self.checked = torch.zeros(req_states.max_num_reqs, dtype=torch.long, device=device)  # [S] ids scanned
        self.on = np.zeros(req_states.max_num_reqs, dtype=bool)  # [S] host: flag may be non-FREE
        self._spec = spec  # draft tokens per step when the config says; else the most rows seen
        self._window = 1  # most ids a slot can commit in one step: 1 + its draft rows
        self._cleared: list[int] = []
        W, C = Watch, DeviceWatch
        eos = sorted(profile.eos_token_ids)
        tags = [t for t in (profile.think_open_id, profile.think_close_id, profile.answer_open_id,
                            profile.answer_close_id, *eos) if t is not None]
        # [V] class of each id (wide enough for the tags even where vocab_size says less)
        cls = torch.full((max(req_states.vocab_size, max(tags) + 1),), C.OTHER, dtype=torch.long)
        # The answer has not started on the answer-open tag or on what `ThinkState` masks there.
        cls[[t for t in (profile.answer_open_id, profile.answer_close_id) if t is not None]] = C.QUIET
        cls[profile.think_open_id] = C.OPEN
        cls[profile.think_close_id] = C.CLOSE
        cls[eos] = C.EOS
        self.cls = cls.to(device)
        nxt = torch.tensor([[W.FREE] * 5, [W.BEFORE] * 5, [W.REDIRECT] * 5, [W.FREE] * 5])  # [4 flags, 5 classes]
        nxt[W.BEFORE, C.OPEN] = W.REDIRECT  # thinking opened
        nxt[W.REDIRECT, C.CLOSE] = W.GUARD  # the model closed thinking itself
        nxt[W.REDIRECT, C.EOS] = W.FREE  # the response ended
        nxt[W.GUARD, [C.EOS, C.QUIET]] = W.GUARD  # not an answer token yet
        self.next = nxt.reshape(-1).to(device)  # [20]
        # One column set for both ops: [close, *EOS, answer-close]; which of them go to -inf per flag.
        ans_close = [] if profile.answer_close_id is None else [profile.answer_close_id]
        self.cols = torch.tensor([profile.think_close_id, *eos, *ans_close], device=device)  # [K]
        self.n_redirect = 1 + len(eos)  # the first 1+E columns are V1's redirect op
        kill = torch.zeros(4, len(self.cols), dtype=torch.bool)  # [4 flags, K]
        kill[W.REDIRECT, 1:self.n_redirect] = True  # EOS -> -inf (its logit moves onto the close tag)
        kill[W.GUARD, 1:] = True  # EOS and the answer-close tag
        self.kill = kill.to(device)

    def drop(self, idx: int) -> None:
        """A recycled slot: its previous occupant's flag must not reach the next one."""
        if self.on[idx]:
            self.on[idx] = False
            self._cleared.append(idx)

    def set(self, slots: np.ndarray, slots_t: torch.Tensor, flags: list[int]) -> None:
        """The host's flags for slots it just caught up to `total_len`."""
        on = np.array(flags, dtype=bool)  # [D]
        if not (on.any() or self.on[slots].any()):
            return
        self.on[slots] = on
        self.flags[slots_t] = torch.tensor(flags).to(self.flags.device)  # [D]
        self.checked[slots_t] = self.rs.total_len.gpu[slots_t].long()  # [D]

    def step(self, flags: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Flags after one more id ([X] each): `ThinkState.advance` restricted to the watch."""
        return self.next[flags * 5 + self.cls[ids]]  # [X]

    def begin(self, logits: torch.Tensor, ctx: LogitsContext) -> bool:
        """Follow the ids committed since each batch slot's last scan. False: no row is watched."""
        if self._cleared:
            self.flags[torch.tensor(self._cleared).to(self.flags.device)] = Watch.FREE
            self._cleared = []
        extra = logits.shape[0] - len(ctx.idx_mapping_np)  # draft rows this step
        window = self._window
        self._window = max(window, 1 + (extra if self._spec is None else min(extra, self._spec)))
        if not self.on[ctx.idx_mapping_np].any():
            return False
        slots = ctx.idx_mapping.long()  # [R]
        total = self.rs.total_len.gpu[slots].long()  # [R]
        seen = self.checked[slots]  # [R]
        flags = self.flags[slots]  # [R]
        ids = self.rs.all_token_ids.gpu
        for j in range(window, 0, -1):  # oldest first: positions total-window .. total-1
            pos = total - j  # [R]
            flags = torch.where(pos >= seen, self.step(flags, ids[slots, pos.clamp(min=0)].long()), flags)  # [R]
        self.flags[slots] = flags
        self.checked[slots] = total
        return True

    def apply(self, logits: torch.Tensor, ctx: LogitsContext, planned: list[tuple[int, int]]) -> None:
        """The flags of every row (draft rows follow their drafts), the host's for rows it
        planned, then the one masked write."""
        flags = self.flags[ctx.expanded_idx_mapping.long()]  # [N]
        if logits.shape[0] != len(ctx.idx_mapping_np):  # row j of a request follows row j-1
            local, ids = ctx.expanded_local_pos, ctx.input_ids.long()  # [N] each (a request's rows are adjacent, in order)
            for j in range(1, self._window):
                flags = torch.where(local == j, self.step(flags.roll(1), ids), flags)  # [N]
        if planned:
            rows, values = zip(*planned)
            flags[torch.tensor(rows).to(flags.device)] = torch.tensor(values).to(flags.device)
        sub = logits[:, self.cols]  # [N, K]
        out = sub.masked_fill(self.kill[flags], float("-inf"))  # [N, K]
        # V1's op (`row_ops.redirect_eos`): the close tag takes the highest of close and EOS
        out[:, 0] = torch.where(flags == Watch.REDIRECT, sub[:, : self.n_redirect].amax(dim=-1), sub[:, 0])  # [N]
        logits[:, self.cols] = out
