"""thinkcap's /metrics series without an engine: what one choice records, and the sums across
API-server processes in prometheus_client's multiprocess mode (as vLLM runs `--api-server-count` > 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import REGISTRY

from budget import BudgetParams
from serving.metrics import observe


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def info(thinking: int, budget: int | None, reason: str | None) -> dict:
    return {"num_thinking_tokens": thinking, "think_budget": budget, "close_reason": reason}


def test_one_choice_moves_each_series_once():
    names = ("thinkcap_thinking_tokens_count", "thinkcap_thinking_tokens_sum", "thinkcap_requested_budget_sum",
             "thinkcap_effective_budget_sum", "thinkcap_grace_tokens_count", "thinkcap_grace_tokens_sum")
    before = {n: value(n) for n in names}
    closes = value("thinkcap_closes_total", close_reason="boundary")
    observe(BudgetParams(think_budget=10, grace=4), 12, info(13, 10, "boundary"))
    moved = {n: value(n) - before[n] for n in names}
    assert moved == {"thinkcap_thinking_tokens_count": 1, "thinkcap_thinking_tokens_sum": 13,
                     "thinkcap_requested_budget_sum": 12, "thinkcap_effective_budget_sum": 10,
                     "thinkcap_grace_tokens_count": 1, "thinkcap_grace_tokens_sum": 3}
    assert value("thinkcap_closes_total", close_reason="boundary") - closes == 1


def test_unlimited_choice_records_no_budget_and_no_grace():
    before = (value("thinkcap_requested_budget_count"), value("thinkcap_effective_budget_count"),
              value("thinkcap_grace_tokens_count"), value("thinkcap_closes_total", close_reason="none"))
    observe(BudgetParams(grace=4), None, info(7, None, None))
    after = (value("thinkcap_requested_budget_count"), value("thinkcap_effective_budget_count"),
             value("thinkcap_grace_tokens_count"), value("thinkcap_closes_total", close_reason="none"))
    assert [a - b for a, b in zip(after, before)] == [0, 0, 0, 1]


CHILD = textwrap.dedent("""
    import sys
    from budget import BudgetParams
    from serving.metrics import observe
    n = int(sys.argv[1])
    for _ in range(n):
        observe(BudgetParams(think_budget=8), 8, {"num_thinking_tokens": 5, "think_budget": 8, "close_reason": "model"})
""")
READER = textwrap.dedent("""
    from vllm.v1.metrics.prometheus import get_prometheus_registry
    reg = get_prometheus_registry()  # what vLLM's /metrics serves in multiprocess mode
    print(reg.get_sample_value("thinkcap_thinking_tokens_count"), reg.get_sample_value("thinkcap_thinking_tokens_sum"),
          reg.get_sample_value("thinkcap_closes_total", {"close_reason": "model"}))
""")


def test_api_server_processes_sum_in_multiprocess_mode(tmp_path: Path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[2]
    for n in (2, 3):  # two API-server processes
        subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, cwd=root, check=True)
    out = subprocess.run([sys.executable, "-c", READER], env=env, cwd=root, check=True, capture_output=True, text=True)
    assert out.stdout.split()[-3:] == ["5.0", "25.0", "5.0"]


def test_dashboard_has_a_panel_for_each_series():
    import json

    from serving import metrics

    dash = json.loads((Path(__file__).resolve().parents[2] / "docs/grafana/thinkcap.json").read_text())
    exprs = [" ".join(t["expr"] for t in p["targets"]) for p in dash["panels"]]
    series = [m._name for m in (metrics.THINKING_TOKENS, metrics.REQUESTED_BUDGET, metrics.EFFECTIVE_BUDGET,
                                metrics.CLOSES, metrics.GRACE_TOKENS)]
    assert [[s for s in series if s + "_" in e] for e in exprs] == [[s] for s in series]
    assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dash["panels"] for t in p["targets"])
