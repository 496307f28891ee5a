"""`thinkcap bench server`: our server against vLLM's own OpenAI server, same model and engine
flags, same streaming load from vLLM's own benchmark client (`vllm.benchmarks.serve`).

Both servers are started one after the other and stay up; then, for each round, every
(concurrency, budget mode) case runs on both, the order alternating between rounds. The ratios
thinkcap/vLLM are medians over rounds of per-round ratios, so drift on a shared machine hits both
sides alike. Budgets: ours as `think_budget`, vLLM's as `thinking_token_budget`.

Afterwards the peer check that matters to users: at a budget that runs out, what share of responses
carry a non-empty answer (split by token ids, the same code for both servers).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benches.peer_answers import answer_share, budget_body
from evaluation.servers import ServerProcess, free_port, thinkcap_server, vllm_server
from vllm_adapter.engine_env import is_cpu_build

# vLLM bench result key → (our name, which way is better)
METRICS = {
    "output_throughput": ("output tok/s", "higher"),
    "median_ttft_ms": ("TTFT p50 ms", "lower"),
    "median_itl_ms": ("ITL p50 ms", "lower"),
    "p50_e2el_ms": ("latency p50 ms", "lower"),
    "p99_e2el_ms": ("latency p99 ms", "lower"),
}


SERVED_NAME = "bench-model"  # one id for both servers


@dataclass
class ServerBenchConfig:
    model: Path | None = None  # None: the tiny model
    concurrencies: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    prompts_per_concurrency: int = 2  # requests per case = max(min_prompts, this × concurrency)
    min_prompts: int = 8
    input_len: int = 32
    output_len: int = 64
    budget: int = 16  # "with budget" cases: forced after this many thinking tokens
    rounds: int = 3
    max_model_len: int = 1024
    seed: int = 0
    peer_requests: int = 16
    peer_budget: int = 48  # the answer-share check: budget, with max_tokens = budget + 24 and = budget
    out: Path = Path("bench_server_out")
    base_port: int = 8100

    def __post_init__(self) -> None:
        for name in ("prompts_per_concurrency", "min_prompts", "input_len", "output_len", "rounds", "max_model_len",
                     "peer_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.concurrencies or min(self.concurrencies) < 1:
            raise ValueError(f"--concurrency needs integers >= 1, got {self.concurrencies}")
        if not 0 <= self.budget < self.output_len:
            raise ValueError(f"--budget must be in [0, --output-len), got {self.budget}: it must run out")
        if self.peer_budget < 24:
            raise ValueError(f"--peer-budget must be >= 24 (room for the closing and an answer), got {self.peer_budget}")
        if self.input_len + self.output_len + 16 > self.max_model_len:
            raise ValueError("--input-len + --output-len must fit in --max-model-len")


def load_args(cfg: ServerBenchConfig, server: ServerProcess, served: str, concurrency: int,
              budget: int | None) -> argparse.Namespace:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    n = max(cfg.min_prompts, cfg.prompts_per_concurrency * concurrency)
    argv = ["--backend", "openai-chat", "--endpoint", "/v1/chat/completions", "--base-url", server.base_url,
            "--model", str(cfg.model), "--served-model-name", served, "--tokenizer", str(cfg.model),
            "--dataset-name", "random", "--random-input-len", str(cfg.input_len),
            "--random-output-len", str(cfg.output_len), "--num-prompts", str(n), "--max-concurrency", str(concurrency),
            "--seed", str(cfg.seed), "--temperature", "0", "--percentile-metrics", "ttft,itl,e2el",
            "--metric-percentiles", "50,99", "--disable-tqdm", "--extra-body", json.dumps(budget_body(server.name, budget))]
    return parser.parse_args(argv)


def run_load(cfg: ServerBenchConfig, server: ServerProcess, served: str, concurrency: int,
             budget: int | None) -> dict[str, float]:
    from vllm.benchmarks.serve import main as bench_main

    result = bench_main(load_args(cfg, server, served, concurrency, budget))
    if result["completed"] != max(cfg.min_prompts, cfg.prompts_per_concurrency * concurrency):
        raise RuntimeError(f"{server.name}: only {result['completed']} requests completed; see {server.log_path}")
    return {key: float(result[key]) for key in METRICS} | {"completed": result["completed"]}


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(o / t for o, t in zip(ours, theirs))


def median_interval(values: list[float], conf: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): a distribution-free interval for the median of per-round ratios, from
    order statistics (the k-th smallest and k-th largest, with k the largest index whose binomial
    tail keeps coverage >= `conf`; with fewer than 6 rounds no k does, and the interval is the range,
    which covers 1 - 2 / 2^n: 94% at 5 rounds)."""
    xs = sorted(values)
    n = len(xs)
    k = 0
    for j in range(1, n // 2 + 1):  # cover = P(x_(j) <= median <= x_(n+1-j)) = 1 - 2 P(Bin(n, 1/2) < j)
        if 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n >= conf:
            k = j - 1
    return statistics.median(xs), xs[k], xs[n - 1 - k]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} logical CPUs visible, {platform.system()} {platform.release()}"


def report(cases: dict[str, dict[str, dict[str, list[float]]]], rounds: int) -> str:
    lines = [f"thinkcap / vLLM, medians of {rounds} per-round ratios (throughput: higher is better for us; times: lower)",
             f"{'case':<16}" + "".join(f"{name:>16}" for name, _ in METRICS.values())]
    for case, by_server in cases.items():
        ratios = [paired_ratio(by_server["thinkcap"][k], by_server["vllm"][k]) for k in METRICS]
        lines.append(f"{case:<16}" + "".join(f"{r:>15.3f}x" for r in ratios))
    pooled = [statistics.median(o / t for by_server in cases.values()
                                for o, t in zip(by_server["thinkcap"][k], by_server["vllm"][k])) for k in METRICS]
    lines.append(f"{'all cases':<16}" + "".join(f"{r:>15.3f}x" for r in pooled) + "   (median of every per-round ratio)")
    lines.append("output tok/s per case, median [interval of the median] of the per-round ratios "
                 "(a case is measurably below a target only where the whole interval is):")
    for case, by_server in cases.items():
        mid, low, high = median_interval([o / t for o, t in zip(by_server["thinkcap"]["output_throughput"],
                                                               by_server["vllm"]["output_throughput"])])
        lines.append(f"{case:<16}{mid:>15.3f}x  [{low:.3f}, {high:.3f}]")
    lines.append("absolute medians (thinkcap | vLLM):")
    for case, by_server in cases.items():
        cells = [f"{statistics.median(by_server['thinkcap'][k]):.1f}|{statistics.median(by_server['vllm'][k]):.1f}"
                 for k in METRICS]
        lines.append(f"{case:<16}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def measure(cfg: ServerBenchConfig, servers: list[ServerProcess], served: str) -> dict[str, Any]:
    cases: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in range(cfg.rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for c in cfg.concurrencies:
            for budget in (None, cfg.budget):
                case = f"c={c} {'budget ' + str(budget) if budget is not None else 'no budget'}"
                for server in order:
                    metrics = run_load(cfg, server, served, c, budget)
                    slot = cases.setdefault(case, {}).setdefault(server.name, {})
                    for key, value in metrics.items():
                        slot.setdefault(key, []).append(value)
    peer = {s.name: answer_share(cfg, s, served) for s in servers}
    return {"cases": cases, "peer": peer}


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if cfg.model is None:
        from thinkcap.tiny_model import ensure_tiny_model

        cfg.model = ensure_tiny_model()
    cpu = is_cpu_build()
    served = SERVED_NAME
    flags = ["--served-model-name", served, "--max-model-len", str(cfg.max_model_len), "--seed", str(cfg.seed),
             "--max-num-seqs", str(max(cfg.concurrencies))]
    work = cfg.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    ports = (cfg.base_port, cfg.base_port + 1) if cfg.base_port else (free_port(), free_port())
    servers = [thinkcap_server(cfg.model, flags, ports[0], work, cpu),
               vllm_server(cfg.model, flags, ports[1], work, cpu)]
    try:
        for server in servers:  # one after the other: two engine start-ups would fight for the cores
            print(f"starting {server.name}: {' '.join(server.cmd)}", flush=True)
            server.start()
        results = measure(cfg, servers, served)
    finally:
        for server in servers:
            server.stop()
    text = report(results["cases"], cfg.rounds)
    text += "\n" + format_peer(results["peer"])
    text += f"\nmachine: {machine()}; vLLM CPU build: {cpu}"
    print(text)
    (work / "bench_server.json").write_text(json.dumps(
        {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
         "machine": machine(), **results}, indent=2) + "\n")
    (work / "bench_server.txt").write_text(text + "\n")
    print(f"wrote {work / 'bench_server.json'}")
    return 0


def format_peer(peer: dict[str, dict[str, Any]]) -> str:
    lines = ["non-empty answers at a budget that runs out (split by token ids):"]
    for name, cases in peer.items():
        for case in cases:
            lines.append(f"  {name:<9} {case['label']:<40} answered {case['answered']}/{case['n']} "
                         f"({case['share']:.0%}), thinking closed {case['closed']}/{case['n']}, "
                         f"mean thinking {case['mean_thinking']:.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> ServerBenchConfig:
    p = argparse.ArgumentParser(prog="thinkcap bench server", description=__doc__.splitlines()[0])
    d = ServerBenchConfig()
    p.add_argument("--model", type=Path, help="model dir (default: the tiny model)")
    p.add_argument("--concurrency", default=",".join(map(str, d.concurrencies)),
                   help="comma-separated max concurrencies (default %(default)s)")
    p.add_argument("--prompts-per-concurrency", type=int, default=d.prompts_per_concurrency,
                   help="requests per case = max(--min-prompts, this × concurrency) (default %(default)s)")
    p.add_argument("--min-prompts", type=int, default=d.min_prompts, help="default %(default)s")
    p.add_argument("--input-len", type=int, default=d.input_len, help="random prompt tokens (default %(default)s)")
    p.add_argument("--output-len", type=int, default=d.output_len,
                   help="tokens generated per request, EOS ignored (default %(default)s)")
    p.add_argument("--budget", type=int, default=d.budget, help="thinking budget of the budgeted cases (default %(default)s)")
    p.add_argument("--rounds", type=int, default=d.rounds, help="alternating rounds (default %(default)s)")
    p.add_argument("--max-model-len", type=int, default=d.max_model_len, help="engine flag for both (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="engine and dataset seed (default %(default)s)")
    p.add_argument("--peer-requests", type=int, default=d.peer_requests,
                   help="requests per server in the answer-share check (default %(default)s)")
    p.add_argument("--peer-budget", type=int, default=d.peer_budget,
                   help="budget of the answer-share check, run with max_tokens = budget + 24 and = budget (default %(default)s)")
    p.add_argument("--out", type=Path, default=d.out, help="folder for logs and bench_server.json (default %(default)s)")
    p.add_argument("--base-port", type=int, default=d.base_port, help="ours on it, vLLM on the next; 0 picks free ports (default %(default)s)")
    a = p.parse_args(argv)
    try:
        concurrencies = [int(c) for c in a.concurrency.split(",")]
    except ValueError:
        p.error(f"--concurrency {a.concurrency!r}: expected comma-separated integers")
    try:
        return ServerBenchConfig(model=a.model, concurrencies=concurrencies,
                                 prompts_per_concurrency=a.prompts_per_concurrency, min_prompts=a.min_prompts,
                                 input_len=a.input_len, output_len=a.output_len, budget=a.budget, rounds=a.rounds,
                                 max_model_len=a.max_model_len, seed=a.seed, peer_requests=a.peer_requests, peer_budget=a.peer_budget,
                                 out=a.out, base_port=a.base_port)
    except ValueError as exc:
        p.error(str(exc))
