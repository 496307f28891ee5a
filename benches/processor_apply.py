"""`thinkcap bench processor-apply`: the processor's `apply` per decode step, V1 path vs V2 path.

No engine: both processor classes are driven at their vLLM interfaces on this machine's device
(CPU here) with a batch of B rows and a V-wide vocabulary (defaults 256 x 151552, GLM-4.1V's),
every row one token further each step. Rounds alternate V1 and V2 on the same batch; the ratio
is the median of per-round ratios (V2 time / V1 time). Cases:

  idle   every row budgeted, none due (the steady state of long thoughts)
  mixed  1/2 rows without a budget, 1/4 sleeping, 1/4 under min_think_tokens (masked every step)
  force  every row in its forced closing (worst case: the V2 path reads every row back)
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch

OPEN, CLOSE, ANS, EOS, TEXT = 10, 11, 12, 0, 20


def _profile():
    from budget import ThinkProfile

    return ThinkProfile("glm4.1v", OPEN, CLOSE, (CLOSE, ANS), frozenset({EOS}), answer_open_id=ANS)


def _args(case: str, i: int, batch: int) -> dict | None:
    if case == "idle":
        return {"think_budget": 10**6}
    if case == "force":
        return {"think_budget": 0, "think_transition_ids": [30] * 10**4}  # never ends within the run
    quarter = i * 4 // batch
    return [None, None, {"think_budget": 10**6}, {"think_budget": 10**6, "min_think_tokens": 10**6}][quarter]


class V1Driver:
    def __init__(self, case: str, batch: int, vocab: int, device: torch.device):
        from vllm import SamplingParams
        from vllm.v1.sample.logits_processor import BatchUpdate

        from vllm_adapter.processor import ThinkBudgetLogitsProcessor

        config = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: vocab, model="bench", hf_config=None))
        self.proc = ThinkBudgetLogitsProcessor(config, device, False)
        self.outputs = [[] for _ in range(batch)]
        added = [(i, SamplingParams(max_tokens=10**6, extra_args=_args(case, i, batch)), [TEXT, OPEN], self.outputs[i])
                 for i in range(batch)]
        self.proc.update_state(BatchUpdate(batch, [], added, []))

    def step(self, logits: torch.Tensor) -> None:
        self.proc.update_state(None)
        self.proc.apply(logits, None)
        for out in self.outputs:  # the engine appends each row's sampled token
            out.append(TEXT)


class V2Driver:
    def __init__(self, case: str, batch: int, vocab: int, device: torch.device, max_len: int):
        import vllm.v1.worker.gpu.buffer_utils as bu
        from vllm import SamplingParams
        from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState
        from vllm.v1.worker.gpu.states import RequestState

        from vllm_adapter.processor import ThinkBudgetLogitsProcessor

        with mock.patch.object(bu, "is_uva_available", lambda: device.type == "cuda"):
            self.rs = RequestState(batch, max_len, 8192, 1, vocab, device)
        config = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: vocab, model="bench", hf_config=None))
        self.proc = ThinkBudgetLogitsProcessor(config, LogitsProcRequestState.from_request_state(self.rs))
        for i in range(batch):
            self.rs.prompt_len.np[i] = self.rs.prefill_len.np[i] = 2
            self.rs.all_token_ids.gpu[i, :2] = torch.tensor([TEXT, OPEN])
            self.proc.add_request(i, SamplingParams(max_tokens=10**6, extra_args=_args(case, i, batch)))
        self.rs.total_len.gpu[:batch] = 2
        self.idx = np.arange(batch, dtype=np.int32)  # [R]
        self.rows = torch.arange(batch, dtype=torch.int32, device=device)  # [R]
        self.ctx = LogitsContext
        self.total = 2

    def step(self, logits: torch.Tensor) -> None:
        ctx = self.ctx(self.rows, self.rows, self.idx, torch.zeros_like(self.rows), torch.zeros_like(self.rows),
                       torch.full_like(self.rows, self.total - 1), np.full(len(self.idx), self.total, dtype=np.int32))
        self.proc.apply(logits, ctx)
        self.rs.all_token_ids.gpu[:, self.total] = TEXT  # post_update commits each row's token
        self.total += 1
        self.rs.total_len.gpu[: len(self.idx)] = self.total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="thinkcap bench processor-apply", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=151552)
    ap.add_argument("--steps", type=int, default=20, help="decode steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default="idle,mixed,force")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    logits = torch.zeros(args.batch, args.vocab, device=device)  # [B, V], reused: apply cost only
    print(f"apply() per decode step, batch {args.batch}, vocab {args.vocab}, {args.device}, "
          f"{args.rounds} alternating rounds of {args.steps} steps (medians)")
    print(f"{'case':<7} {'V1 us/step':>11} {'V2 us/step':>11} {'V2/V1':>7}")
    with mock.patch("vllm_adapter.processor_common.model_profile", return_value=_profile()):
        for case in args.cases.split(","):
            max_len = 8 + args.steps * args.rounds * 2
            drivers = {"v1": V1Driver(case, args.batch, args.vocab, device),
                       "v2": V2Driver(case, args.batch, args.vocab, device, max_len)}
            times: dict[str, list[float]] = {"v1": [], "v2": []}
            for _ in range(args.rounds):
                for name, drv in drivers.items():
                    drv.step(logits)  # warm-up step outside the clock (first visits)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        drv.step(logits)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[name].append((time.perf_counter() - t0) / args.steps * 1e6)
            ratio = statistics.median(b / a for a, b in zip(times["v1"], times["v2"]))
            print(f"{case:<7} {statistics.median(times['v1']):>11.1f} {statistics.median(times['v2']):>11.1f} {ratio:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
