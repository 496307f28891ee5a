"""Smoke run of `thinkcap bench server` on a tiny load: both servers start, vLLM's benchmark client
drives both, every case has a ratio's worth of numbers, and the peer check splits real ids. No
timing is asserted (benchmarks are commands; this only proves the command works)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benches.server import ServerBenchConfig, main, parse_args

@pytest.mark.engine
@pytest.mark.slow
def test_bench_server_smoke(tmp_path: Path, capsys):
    out = tmp_path / "bench"
    assert main(["--concurrency", "1,2", "--rounds", "1", "--min-prompts", "2", "--prompts-per-concurrency", "1",
                 "--output-len", "16", "--budget", "4", "--peer-requests", "2", "--peer-budget", "24",
                 "--out", str(out), "--base-port", "0"]) == 0
    printed = capsys.readouterr().out
    assert "thinkcap / vLLM" in printed and "non-empty answers" in printed
    result = json.loads((out / "bench_server.json").read_text())
    assert set(result["cases"]) == {"c=1 no budget", "c=1 budget 4", "c=2 no budget", "c=2 budget 4"}
    for case in result["cases"].values():
        for server in ("thinkcap", "vllm"):
            assert case[server]["completed"] == [2]
            assert case[server]["output_throughput"][0] > 0 and case[server]["median_ttft_ms"][0] > 0
    for server in ("thinkcap", "vllm"):
        room, tight = result["peer"][server]
        assert room["n"] == tight["n"] == 2 and room["max_tokens"] == 48 and tight["max_tokens"] == 24
    # max_tokens = budget: ours lowers the budget to keep room for the answer (greedy, so the
    # same on every run); vLLM's budget cannot fire before max_tokens ends the response.
    assert result["peer"]["thinkcap"][1]["answered"] == 2
    assert result["peer"]["vllm"][1]["closed"] == 0
    assert (out / "thinkcap-serve.log").exists() and (out / "vllm-serve.log").exists()


@pytest.mark.parametrize(("argv", "needle"), [
    (["--budget", "64", "--output-len", "64"], "--budget"),
    (["--concurrency", "0"], "--concurrency"),
    (["--rounds", "0"], "--rounds"),
    (["--peer-budget", "8"], "--peer-budget"),
])
def test_bad_options_are_refused(argv, needle, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert needle in capsys.readouterr().err


def test_defaults_are_the_issue_load():
    assert ServerBenchConfig().concurrencies == [1, 8, 32, 64]


def test_the_vllm_side_sees_no_thinkcap_entry_points(tmp_path: Path):
    import subprocess

    from evaluation.servers import vllm_server
    from thinkcap.tiny_model import ensure_tiny_model

    server = vllm_server(ensure_tiny_model(), [], 1, tmp_path, cpu=True)
    code = ("from importlib.metadata import entry_points as e; groups = ('vllm.logits_processors', "
            "'vllm.general_plugins', 'vllm.endpoint_plugins'); print([p.value for g in groups for p in e(group=g)])")
    seen = subprocess.run([server.cmd[0], "-c", code], env=server.env, capture_output=True, text=True, check=True)
    assert "vllm_adapter" not in seen.stdout and "serving." not in seen.stdout
    direct = subprocess.run([server.cmd[0], "-c", code], capture_output=True, text=True, check=True)
    assert "vllm_adapter.processor:ThinkBudgetLogitsProcessor" in direct.stdout  # installed, hidden only there
    template = Path(server.cmd[server.cmd.index("--chat-template") + 1]).read_text()
    from serving.cli import open_thinking_template

    assert template == open_thinking_template(str(ensure_tiny_model()), False)  # what `thinkcap serve` uses


def test_median_interval_from_order_statistics():
    from benches.server import median_interval

    # 5 rounds: no order statistic inside the range reaches 95%, so the range (94% coverage).
    assert median_interval([1.08, 0.77, 0.87, 0.84, 0.98]) == (0.87, 0.77, 1.08)
    # 9 rounds: [x(2), x(8)] covers 1 - 2 x (1 + 9) / 512 = 96.1% (x(3), x(7) would be 82%).
    nine = [0.90, 0.95, 1.00, 1.05, 1.10, 0.85, 0.92, 0.97, 1.02]
    assert median_interval(nine) == (0.97, 0.90, 1.05)
    assert median_interval([1.0]) == (1.0, 1.0, 1.0)
