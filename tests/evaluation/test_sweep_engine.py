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


def test_ladder_answers_every_budget_from_one_thought(real_server: str, tmp_path: Path):
    """`--ladder` against the per-budget sweep, greedy, same server: where the cut thought's text
    re-tokenizes to the same ids (the random model writes partial UTF-8 pieces that do not), every
    row has the sweep's answer; budgets that hold the whole thought are the thought's own row; and
    the ladder generates fewer tokens (one thought instead of one per budget)."""
    import httpx

    from tasks.running_sums import make_arith_dataset

    data = make_arith_dataset(tmp_path / "data", n=6, seed=3)
    common = ["--base-url", real_server, "--no-progress", "--no-plots", "--budgets", "0,4,8,unlimited",
              "--max-tokens", "48"]
    assert main([str(data), "--out", str(tmp_path / "sweep"), *common]) == 0
    assert main([str(data), "--out", str(tmp_path / "ladder"), "--ladder", *common]) == 0
    sweep = {(r["item_id"], r["budget"]): r for r in map(json.loads, (tmp_path / "sweep/responses.jsonl").open())}
    ladder = {(r["item_id"], r["budget"]): r for r in map(json.loads, (tmp_path / "ladder/responses_ladder.jsonl").open())}
    assert set(sweep) == set(ladder) and len(ladder) == 24
    root = real_server.removesuffix("/v1")
    same, checked = 0, 0
    for key, row in ladder.items():
        assert row["reasoning"].strip() == sweep[key]["reasoning"].strip()  # the cut keeps the thought's first tokens
        assert row["thinking_tokens"] == sweep[key]["thinking_tokens"]
        ids = httpx.post(f"{root}/tokenize", json={"prompt": row["reasoning"], "add_special_tokens": False}).json()["tokens"]
        back = httpx.post(f"{root}/detokenize", json={"tokens": ids}).json()["prompt"] if ids else ""
        if back == row["reasoning"] and "\ufffd" not in row["reasoning"]:
            checked += 1
            same += row["content"] == sweep[key]["content"]
    assert checked >= 6 and same == checked
    tokens = {name: json.loads((tmp_path / name / "summary.json").read_text())["tokens_generated"]
              for name in ("sweep", "ladder")}
    assert tokens["ladder"] < tokens["sweep"], tokens


def test_grace_and_budget_message_reach_the_real_server(real_server: str, synthetic_jsonl: Path, tmp_path: Path):
    out, msg = tmp_path / "controls", " So the answer is"
    assert main([str(synthetic_jsonl), "--base-url", real_server, "--out", str(out), "--no-progress", "--no-plots",
                 "--budgets", "8", "--max-tokens", "40", "--limit", "3", "--seed", "1",
                 "--grace", "4", "--budget-message", msg]) == 0
    rows = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and not any(r.get("error") for r in rows)
    for r in rows:
        assert (r["grace"], r["budget_message"]) == (4, msg)
        assert r["thinking_tokens"] <= 8 + 4  # the budget plus at most the grace window
        if r["answer_forced"]:  # a forced close always says the wrap-up message first (it counts as thinking)
            assert r["reasoning"].rstrip().endswith(msg.strip())
    assert any(r["answer_forced"] for r in rows)  # random weights think on: the message was forced
