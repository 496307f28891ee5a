"""A small sweep against a real `thinkcap serve` on the tiny model (random weights: accuracy is
not the point; the budgets, counts and files are)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.cli import main

pytestmark = pytest.mark.engine


def test_sweep_on_the_real_server(real_server: str, synthetic_jsonl: Path, tmp_path: Path):
    out = tmp_path / "sweep"
    args = [str(synthetic_jsonl), "--base-url", real_server, "--out", str(out), "--no-progress",
            "--budgets", "0,8,unlimited", "--max-tokens", "48", "--concurrency", "4", "--seed", "1"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 6 * 3 and not any(r.get("error") for r in rows)
    assert {r["model"] for r in rows} == {"thinkcap-tiny-glm4v"} or len({r["model"] for r in rows}) == 1
    assert {r["thinking_tokens_source"] for r in rows} == {"thinkcap"}
    for r in rows:
        assert r["completion_tokens"] <= 48 and r["ttft_s"] is not None and r["ttft_s"] <= r["latency_s"]
        if r["budget"] == "0":
            assert r["thinking_tokens"] == 0 and r["reasoning"] == ""
        if r["budget"] == "8":
            assert r["thinking_tokens"] <= 8
            # Random weights think on: when the budget is reached the server forces the answer.
            assert r["answer_forced"] == (r["thinking_tokens"] == 8)
    summary = json.loads((out / "summary.json").read_text())
    overall = {r["budget"]: r for r in summary["table"] if r["domain"] == "all"}
    assert set(overall) == {"0", "8", "unlimited"} and all(r["responses"] == 6 for r in overall.values())
    assert overall["8"]["mean_thinking_tokens"] <= 8 <= overall["unlimited"]["mean_thinking_tokens"]
    for name in ("accuracy_vs_budget.png", "accuracy_vs_thinking.png", "rates_vs_budget.png"):
        assert (out / name).stat().st_size > 0
    assert main(args) == 0  # resumed: nothing left to send, same table
    assert json.loads((out / "summary.json").read_text())["table"] == summary["table"]
