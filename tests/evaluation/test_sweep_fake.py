"""The sweep mechanics against the demo's fake server: what is sent, what is written, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.cli import main
from tests.ui.ui_fake_server import MODEL, NATURAL_THINKING


def run(fake_server, data: Path, out: Path, *extra: str) -> int:
    return main([str(data), "--base-url", fake_server.api_base, "--out", str(out), "--no-progress",
                 "--max-tokens", "64", *extra])


def rows_of(out: Path) -> list[dict]:
    rows = []
    for line in (out / "responses.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the line a test cut
            pass
    return rows


def test_sweep_sends_every_budget_and_writes_everything(fake_server, synthetic_jsonl: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "0,4,unlimited", "--concurrency", "3") == 0
    sent = fake_server.requests
    assert len(sent) == 6 * 3
    assert sorted(json.dumps(r["think_budget"]) for r in sent) == sorted(["0", "4", "null"] * 6)
    assert all(r["model"] == MODEL and r["max_tokens"] == 64 and r["stream"] for r in sent)
    rows = rows_of(out)
    assert len(rows) == 18 and {r["thinking_tokens_source"] for r in rows} == {"thinkcap"}
    by_budget = {b: [r for r in rows if r["budget"] == b] for b in ("0", "4", "unlimited")}
    assert {r["thinking_tokens"] for r in by_budget["4"]} == {4}
    assert {r["thinking_tokens"] for r in by_budget["unlimited"]} == {NATURAL_THINKING}
    assert all(r["answer_forced"] for r in by_budget["4"]) and not any(r["answer_forced"] for r in by_budget["unlimited"])
    # The fake always answers 3: exactly the counting items whose answer is 3 are right.
    items = {json.loads(line)["id"]: json.loads(line) for line in synthetic_jsonl.read_text().splitlines()}
    for r in rows:
        assert r["accuracy"] == float(items[r["item_id"]]["domain"] != "exact" and items[r["item_id"]]["answer"] == 3)
        assert r["format_valid"] and r["has_answer"] and r["ttft_s"] <= r["latency_s"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 6 and summary["budgets"] == ["0", "4", "unlimited"]
    overall = {r["budget"]: r for r in summary["table"] if r["domain"] == "all"}
    assert overall["4"]["mean_thinking_tokens"] == 4 and overall["4"]["forced_rate"] == 1.0
    assert overall["unlimited"]["forced_rate"] == 0.0 and overall["0"]["responses"] == 6
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("budget,domain,items,responses,accuracy,ci95_low,ci95_high,pass@1")
    assert len(csv_lines) == 1 + len(summary["table"])
    for name in ("accuracy_vs_budget.png", "accuracy_vs_thinking.png", "rates_vs_budget.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_sends_only_what_is_missing(fake_server, synthetic_jsonl: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "0,8", "--no-plots") == 0
    assert len(fake_server.requests) == 12
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "0,8", "--no-plots") == 0
    assert len(fake_server.requests) == 12  # all done: nothing sent
    lines = (out / "responses.jsonl").read_text().splitlines()
    (out / "responses.jsonl").write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # as if killed mid-write
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "0,8,unlimited", "--no-plots") == 0
    assert len(fake_server.requests) == 12 + 5 + 6  # the 5 lost ones and the new budget
    rows = rows_of(out)
    assert len(rows) == 7 + 11 and len({(r["item_id"], r["budget"]) for r in rows}) == 18
    table = json.loads((out / "summary.json").read_text())["table"]
    assert {r["budget"]: r["responses"] for r in table if r["domain"] == "all"} == {"0": 6, "8": 6, "unlimited": 6}


def test_resume_with_other_settings_is_refused(fake_server, synthetic_jsonl: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8", "--no-plots", "--limit", "2") == 0
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8", "--no-plots", "--temperature", "0.7") == 2
    assert "temperature" in capsys.readouterr().err


def test_samples_and_seeds(fake_server, synthetic_jsonl: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "4", "--samples", "3", "--temperature", "0.8",
               "--seed", "100", "--limit", "2", "--no-plots") == 0
    assert sorted(r["seed"] for r in fake_server.requests) == [100, 100, 101, 101, 102, 102]
    assert all(r["temperature"] == 0.8 for r in fake_server.requests)
    row = json.loads((out / "summary.json").read_text())["table"][0]
    assert row["responses"] == 6 and row["items"] == 2 and "pass@3" in row


def test_peer_budget_params(fake_server, synthetic_jsonl: Path, tmp_path: Path):
    assert run(fake_server, synthetic_jsonl, tmp_path / "a", "--budgets", "16,unlimited", "--limit", "1",
               "--budget-param", "thinking_token_budget", "--no-plots") == 0
    assert [("think_budget" in r, r.get("thinking_token_budget")) for r in fake_server.requests] == [
        (False, 16), (False, None)]
    assert run(fake_server, synthetic_jsonl, tmp_path / "b", "--budgets", "low,high", "--limit", "1",
               "--budget-param", "reasoning_effort", "--no-plots") == 0
    assert [r.get("reasoning_effort") for r in fake_server.requests[2:]] == ["low", "high"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--model", "no-such-model"], "refused the request (404)"),
    (["--samples", "2"], "--temperature"),
    (["--budgets", "-3"], ">= 0"),
    (["--concurrency", "0"], "--concurrency"),
    (["--extra-body", '{"think_budget": 3}'], "--extra-body"),
])
def test_bad_settings_are_refused_with_the_option_named(fake_server, synthetic_jsonl, tmp_path, capsys, args, needle):
    assert run(fake_server, synthetic_jsonl, tmp_path / "x", *args) == 2
    assert needle in capsys.readouterr().err


def test_unreachable_server_records_errors_that_a_rerun_retries(fake_server, synthetic_jsonl, tmp_path, capsys):
    out = tmp_path / "run"
    dead = ["--base-url", "http://127.0.0.1:9/v1", "--model", MODEL, "--timeout", "5"]
    assert main([str(synthetic_jsonl), *dead, "--out", str(out), "--no-progress", "--limit", "2", "--budgets", "8",
                 "--max-tokens", "64"]) == 2
    assert "no request succeeded" in capsys.readouterr().err
    assert [bool(r["error"]) for r in rows_of(out)] == [True, True]
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8", "--limit", "2", "--no-plots") == 0
    assert len(fake_server.requests) == 2


def test_eval_client_imports_no_vllm(tmp_path: Path):
    code = ("import sys, evaluation.cli, evaluation.runner, evaluation.dataset, scoring.score, evaluation.report;"
            "evaluation.dataset.load_items; print(sorted(m for m in sys.modules if m.split('.')[0] == 'vllm'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_stream_that_fails_midway_is_an_error_row(fake_server, tmp_path: Path):
    from tests.ui.ui_fake_server import FAIL_WORD

    data = tmp_path / "text.jsonl"
    data.write_text(json.dumps({"id": "ok", "domain": "counting", "prompt": "How many?", "answer": 3}) + "\n"
                    + json.dumps({"id": "bad", "domain": "counting", "prompt": f"{FAIL_WORD} please", "answer": 3}) + "\n")
    out = tmp_path / "run"
    assert run(fake_server, data, out, "--budgets", "unlimited", "--no-plots") == 0
    rows = {r["item_id"]: r for r in rows_of(out)}
    assert "generation failed" in rows["bad"]["error"] and rows["ok"]["accuracy"] == 1.0
    table = json.loads((out / "summary.json").read_text())["table"][0]
    assert table["responses"] == 1 and table["error_rate"] == 0.5 and table["accuracy"] == 1.0
    assert run(fake_server, data, out, "--budgets", "unlimited", "--no-plots") == 0
    assert [r["messages"][0]["content"][-1]["text"] for r in fake_server.requests[2:]] == [f"{FAIL_WORD} please"]


def test_grace_and_budget_message_on_every_request_and_in_the_run_settings(fake_server, synthetic_jsonl, tmp_path, capsys):
    out = tmp_path / "run"
    controls = ("--grace", "4", "--budget-message", "Time to answer.")
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8,unlimited", "--limit", "2", "--no-plots", *controls) == 0
    assert [(r["think_budget_grace"], r["think_budget_message"]) for r in fake_server.requests] == [
        (4, "Time to answer.")] * 4
    assert {(r["grace"], r["budget_message"]) for r in rows_of(out)} == {(4, "Time to answer.")}
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["grace"], summary["budget_message"]) == (4, "Time to answer.")
    # A resumed run cannot mix controls: another grace, or none, is refused naming the setting.
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8", "--no-plots", "--grace", "2",
               "--budget-message", "Time to answer.") == 2
    assert "grace" in capsys.readouterr().err
    assert run(fake_server, synthetic_jsonl, out, "--budgets", "8", "--no-plots") == 2
    assert "grace" in capsys.readouterr().err
    assert len(fake_server.requests) == 4


def test_without_controls_no_control_field_is_sent(fake_server, synthetic_jsonl, tmp_path):
    assert run(fake_server, synthetic_jsonl, tmp_path / "run", "--budgets", "8", "--limit", "1", "--no-plots") == 0
    assert [k for k in fake_server.requests[0] if k.startswith("think_budget_")] == []


@pytest.mark.parametrize(("args", "needle"), [
    (["--grace", "-1"], "--grace"),
    (["--budget-message", " "], "--budget-message"),
    (["--extra-body", '{"think_budget_grace": 3}'], "--extra-body"),
    (["--ladder", "--grace", "2"], "--ladder"),
])
def test_bad_controls_are_refused_with_the_option_named(fake_server, synthetic_jsonl, tmp_path, capsys, args, needle):
    assert run(fake_server, synthetic_jsonl, tmp_path / "x", "--budgets", "8", *args) == 2
    assert needle in capsys.readouterr().err
    assert fake_server.requests == []
