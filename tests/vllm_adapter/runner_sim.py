"""Two simulated vLLM model runners on CPU tensors, driving the real processor classes.

- `V1Sim`: the V1 persistent batch (`BatchUpdate` removed/added/moved, one token per step).
- `V2Sim`: Model Runner V2 as its sampler drives custom processors: vLLM's own `RequestState`
  (slots from a free list, prompt + output staged on admission, `total_len`/`all_token_ids`
  committed on the "device" after sampling like `post_update`), `LogitsProcRequestState` /
  `LogitsContext` built as in `vllm/v1/worker/gpu/sample/sampler.py`, rows reordered every step,
  chunked prefill, draft rows with greedy acceptance, preemption and resume.

The model is a fixed random logits table per request and output position, sampling is greedy,
so a request's tokens depend only on its own history and the processor's edits: both runners
must emit identical tokens with identical forced positions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

from budget import ThinkProfile

V = 64
OPEN, CLOSE, ANS, EOS, WAIT = 10, 11, 12, 0, 50
GLM = ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS}), answer_open_id=ANS)
CPU = torch.device("cpu")


def fake_config() -> SimpleNamespace:
    """What the processors read from a VllmConfig (the profile itself is patched in)."""
    return SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: V, model="sim", hf_config=None))


@dataclass
class Req:
    rid: str
    prompt: list[int]
    extra_args: dict | None
    max_tokens: int
    table: torch.Tensor  # [max_tokens, V] the model's logits at each output position
    preempt_at: list[int] = field(default_factory=list)  # output lengths at which it is preempted

    def sampling_params(self):
        from vllm import SamplingParams

        return SamplingParams(max_tokens=self.max_tokens, temperature=0.0, extra_args=self.extra_args)


def random_request(rng: random.Random, n: int) -> Req:
    kind = rng.random()
    args: dict | None = None
    if kind > 0.2:
        args = {"think_budget": rng.choice([None, 0, 1, 2, 3, 5, 8, 13])}
        if rng.random() < 0.3:
            args["min_think_tokens"] = rng.randint(1, 6)
        if rng.random() < 0.5:
            args["think_continuation_ids"] = [WAIT, WAIT + 1]
        if rng.random() < 0.3:
            args["think_budget_message_ids"] = [60, 61]
        if rng.random() < 0.3:
            args["think_budget_grace"] = rng.randint(1, 5)
        if rng.random() < 0.2:
            args["think_budget_action"] = "truncate"
        if rng.random() < 0.3:
            args["answer_required"] = False
        if rng.random() < 0.3:
            args["open_thinking"] = True
        if rng.random() < 0.3:
            args["answer_reserve"] = rng.randint(0, 6)
        if args["think_budget"] is not None and "min_think_tokens" in args:
            args["min_think_tokens"] = min(args["min_think_tokens"], args["think_budget"])
    body = [rng.randrange(20, 40) for _ in range(rng.randint(1, 6))]
    prompt = body + rng.choice([[OPEN], [OPEN], [], [CLOSE, ANS], [OPEN, 21, CLOSE]])
    max_tokens = rng.randint(4, 40)
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    table = torch.randn(max_tokens, V, generator=gen)  # [T, V]
    table[:, [OPEN, CLOSE, EOS]] += torch.tensor([0.8, 1.2, 0.3])  # tags are plausible choices
    preempt = sorted(rng.sample(range(1, max_tokens), k=min(max_tokens - 1, rng.choice([0, 0, 1, 2]))))
    return Req(f"r{n}", prompt, args, max_tokens, table, preempt)


@dataclass
class Outcome:
    output: list[int] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)  # output positions whose row was one-hot


def one_hot(row: torch.Tensor) -> bool:
    return int(torch.isfinite(row).sum()) == 1


def finished(req: Req, out: Outcome) -> bool:
    return len(out.output) >= req.max_tokens or (bool(out.output) and out.output[-1] == EOS)


class V1Sim:
    """The V1 persistent batch; preempts each request at the output lengths V2Sim recorded."""

    def __init__(self, proc, rng: random.Random, capacity: int):
        self.proc, self.rng, self.capacity = proc, rng, capacity

    def run(self, reqs: list[Req], preempted: dict[str, list[int]]) -> dict[str, Outcome]:
        from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

        outs = {r.rid: Outcome() for r in reqs}
        waiting, batch = list(reqs), []  # batch[i]: the request in persistent row i
        todo = {r.rid: list(preempted.get(r.rid, [])) for r in reqs}
        while waiting or batch:
            removed = []
            for i, r in enumerate(batch):
                if finished(r, outs[r.rid]) or (todo[r.rid] and len(outs[r.rid].output) == todo[r.rid][0]):
                    removed.append(i)
                    if not finished(r, outs[r.rid]):
                        todo[r.rid].pop(0)
                        waiting.append(r)
            keep = [r for i, r in enumerate(batch) if i not in removed]
            holes = sorted(removed)
            batch = [None if i in removed else r for i, r in enumerate(batch)]
            added = []
            while waiting and len(keep) < self.capacity and self.rng.random() < 0.8:
                r = waiting.pop(0)
                i = holes.pop(0) if holes else len(batch)
                if i == len(batch):
                    batch.append(None)
                batch[i] = r
                keep.append(r)
                added.append((i, r.sampling_params(), r.prompt, outs[r.rid].output))
            moved = []
            while None in batch:  # condense: the last row moves into a hole (one-way)
                while batch and batch[-1] is None:
                    batch.pop()
                if None in batch:
                    hole = batch.index(None)
                    moved.append((len(batch) - 1, hole, MoveDirectionality.UNIDIRECTIONAL))
                    batch[hole] = batch.pop()
            if len(batch) > 1 and self.rng.random() < 0.3:
                a, b = self.rng.sample(range(len(batch)), 2)
                moved.append((a, b, MoveDirectionality.SWAP))
                batch[a], batch[b] = batch[b], batch[a]
            self.proc.update_state(BatchUpdate(len(batch), removed, added, moved) if removed or added or moved else None)
            if not batch:
                continue
            logits = torch.stack([r.table[len(outs[r.rid].output)] for r in batch])  # [B, V]
            logits = self.proc.apply(logits, None)
            for i, r in enumerate(batch):
                out = outs[r.rid]
                if one_hot(logits[i]):
                    out.forced.append(len(out.output))
                out.output.append(int(logits[i].argmax()))
        return outs


def cpu_request_state(max_reqs: int, max_len: int, spec: int):
    """vLLM's own V2 `RequestState`, on CPU: no UVA, no pinned memory, buffers on "cpu" (the GPU
    wheels of 0.33/0.34 ask the driver otherwise); staged writes are flushed by `flush`."""
    from contextlib import ExitStack
    from unittest import mock

    import vllm.v1.worker.gpu.buffer_utils as bu
    from vllm.platforms import current_platform
    from vllm.v1.worker.gpu.states import RequestState

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(bu, "is_uva_available", lambda: False))
        if hasattr(bu, "is_pin_memory_available"):
            stack.enter_context(mock.patch.object(bu, "is_pin_memory_available", lambda: False))
        if current_platform.device_type != "cpu":
            stack.enter_context(mock.patch.object(type(current_platform), "device_type", "cpu"))
        return RequestState(max_reqs, max_len, 4096, spec, V, CPU)


def flush(t) -> None:
    """`StagedWriteTensor.apply_write` without Triton."""
    starts = [0, *t._staged_write_cu_lens[:-1]]
    for idx, start, a, b in zip(t._staged_write_indices, t._staged_write_starts, starts, t._staged_write_cu_lens):
        vals = torch.tensor(t._staged_write_contents[a:b], dtype=t.dtype)
        (t.gpu[idx, start:start + len(vals)] if t.gpu.dim() == 2 else t.gpu[idx:idx + 1]).copy_(vals)
    t.clear_staged_writes()


@dataclass
class Running:
    req: Req
    slot: int
    prefill_len: int
    computed: int = 0  # prefill tokens computed so far


class V2Sim:
    def __init__(self, proc_cls, rng: random.Random, capacity: int, spec: int, max_len: int = 128):
        from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcRequestState

        self.rs = cpu_request_state(capacity, max_len, max(spec, 1))
        self.proc = proc_cls(fake_config(), LogitsProcRequestState.from_request_state(self.rs))
        self.rng, self.capacity, self.spec = rng, capacity, spec
        self.stats = {"draft_rows": 0, "accepted": 0, "preempted": 0, "partial_prefill": 0}

    def run(self, reqs: list[Req]) -> tuple[dict[str, Outcome], dict[str, list[int]]]:
        rs, rng = self.rs, self.rng
        outs = {r.rid: Outcome() for r in reqs}
        preempted: dict[str, list[int]] = {r.rid: [] for r in reqs}
        waiting, running = list(reqs), []
        while waiting or running:
            for run in list(running):  # finish or preempt: vLLM frees the slot, no processor call
                out, points = outs[run.req.rid], run.req.preempt_at
                preempt = bool(points) and points[0] <= len(out.output) and run.computed >= run.prefill_len
                if finished(run.req, out) or preempt:
                    rs.remove_request(run.req.rid)
                    running.remove(run)
                if preempt and not finished(run.req, out):
                    while points and points[0] <= len(out.output):
                        points.pop(0)
                    preempted[run.req.rid].append(len(out.output))
                    self.stats["preempted"] += 1
                    waiting.append(run.req)
            while waiting and len(running) < self.capacity and rng.random() < 0.8:
                r = waiting.pop(rng.randrange(len(waiting)))
                history = r.prompt + outs[r.rid].output
                rs.add_request(r.rid, len(r.prompt), history, 0, r.max_tokens)
                slot = rs.req_id_to_index[r.rid]
                self.proc.add_request(slot, r.sampling_params())
                running.append(Running(r, slot, len(history)))
            rs.prompt_len.copy_to_uva()
            rs.prefill_len.copy_to_uva()
            flush(rs.total_len)
            flush(rs.all_token_ids)
            self.proc.apply_staged_writes()
            if running:
                self._step(rng.sample(running, len(running)), outs)
        return outs, preempted

    def _step(self, batch: list[Running], outs: dict[str, Outcome]) -> None:
        from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext

        rs, rng = self.rs, self.rng
        rows, local, inputs, pos, bound, tables, drafts_of = [], [], [], [], [], [], []
        for b, run in enumerate(batch):
            total = int(rs.total_len.gpu[run.slot])
            out_len = total - len(run.req.prompt)
            k, drafts = 0, []
            if run.computed < run.prefill_len:  # (chunked) prefill: one row
                chunk = rng.choice([run.prefill_len, run.prefill_len, rng.randint(1, run.prefill_len)])
                run.computed = min(run.prefill_len, run.computed + chunk)
                bound.append(run.computed)
                self.stats["partial_prefill"] += run.computed < run.prefill_len
            else:
                k = rng.randint(0, min(self.spec, run.req.max_tokens - out_len - 1))
                for j in range(k):  # the drafter: usually the model's own next choice
                    natural = int(run.req.table[out_len + j].argmax())
                    drafts.append(natural if rng.random() < 0.7 else rng.choice([OPEN, CLOSE, ANS, WAIT, 30]))
                bound.append(total + k)
            drafts_of.append(drafts)
            last = int(rs.all_token_ids.gpu[run.slot, total - 1])
            for j in range(k + 1):
                rows.append(run.slot)
                local.append(j)
                inputs.append(last if j == 0 else drafts[j - 1])
                pos.append(total - 1 + j)
                tables.append(run.req.table[min(out_len + j, run.req.max_tokens - 1)])
            self.stats["draft_rows"] += k
        idx_np = np.array([run.slot for run in batch], dtype=np.int32)  # [R]
        ctx = LogitsContext(
            expanded_idx_mapping=torch.tensor(rows, dtype=torch.int32),  # [N]
            idx_mapping=torch.from_numpy(idx_np),  # [R]
            idx_mapping_np=idx_np,
            expanded_local_pos=torch.tensor(local, dtype=torch.int32),  # [N]
            input_ids=torch.tensor(inputs, dtype=torch.int32),  # [N]
            pos=torch.tensor(pos, dtype=torch.int64),  # [N]
            seq_lens_upper_bound_np=np.array(bound, dtype=np.int32),  # [R]
        )
        logits = self.proc.apply(torch.stack(tables).clone(), ctx)  # [N, V]
        row = 0
        for run, drafts in zip(batch, drafts_of):
            n_rows = len(drafts) + 1
            mine = logits[row:row + n_rows]
            row += n_rows
            if run.computed < run.prefill_len:
                continue  # a partial prefill chunk: its sample is discarded
            out = outs[run.req.rid]
            m = 0  # greedy acceptance: draft j+1 stands iff row j would have chosen it
            while m < len(drafts) and drafts[m] == int(mine[m].argmax()):
                m += 1
            self.stats["accepted"] += m
            new = []
            for j in range(m + 1):
                if finished(run.req, out):
                    break
                if one_hot(mine[j]):
                    out.forced.append(len(out.output))
                tok = drafts[j] if j < m else int(mine[j].argmax())
                out.output.append(tok)
                new.append(tok)
            total = int(self.rs.total_len.gpu[run.slot])  # post_update: commit on the device
            self.rs.all_token_ids.gpu[run.slot, total:total + len(new)] = torch.tensor(new, dtype=torch.int32)
            self.rs.total_len.gpu[run.slot] = total + len(new)
