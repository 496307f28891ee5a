"""`thinkcap bench learning --arms budget` (benches/budgets.py): a smoke run of every arm, and the reuse of
its SFT cold start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.running_sums import make_arith_dataset


@pytest.mark.slow
def test_bench_budget_arms_smoke(tmp_path, warm_model_dir):
    """Every arm trains one step and is scored at each budget; results and plot are written. Starts
    from the shared format warm-up (--sft-model): a model with 2 SFT steps emits stray <|image|> ids."""
    from benches import learning

    out = tmp_path / "bench"
    rc = learning.main(["--arms", "budget", "--out", str(out), "--n", "16", "--held-out", "4",
                              "--sft-model", str(warm_model_dir), "--steps", "1", "--seeds", "1", "--prompts", "2", "--group", "2",
                              "--choices", "0,4", "--ladder-choices", "0,4", "--budget", "8", "--eval-budgets", "0,full",
                              "--engine", "hf", "--budget-balance", "length", "--only", "abcde"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["accuracy"]) == 6  # the SFT model and five arms
    assert set(results["auc"]) == set(results["accuracy"]) and all(0 <= a[0] <= 1 for a in results["auc"].values())
    assert set(results["short_share"]) == set(results["accuracy"])
    hinted = json.loads((out / "arm-d-seed0" / "checkpoints" / "step-000001" / "policy" / "thinkcap_policy.json").read_text())
    assert hinted["budget_hint"]["template"] == "Think for at most {budget} tokens."  # served as trained
    for per_budget in results["accuracy"].values():
        assert set(per_budget) == {"0", "full"} and all(0 <= lo <= m <= hi <= 1 for m, lo, hi in per_budget.values())
    assert (out / "budget_curve.png").stat().st_size > 0
    drawn = [json.loads(line) for line in (out / "arm-b-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert drawn[0]["rollout/think_budget_mean"] in (0.0, 2.0, 4.0)
    ladder = json.loads((out / "arm-d-seed0" / "metrics.jsonl").read_text().splitlines()[0])
    weights = {k: v for k, v in ladder.items() if k.endswith("/balance_weight")}  # --budget-balance reached train()
    assert weights and set(weights) <= {"budget/0/balance_weight", "budget/4/balance_weight"}
    assert all(0 < w <= 4 for w in weights.values())
    assert set(results["think_tokens"]) == set(results["accuracy"])
    assert results["think_tokens"][next(iter(results["think_tokens"]))]["0"] == 0  # budget 0: no thought at all
    anytime = json.loads((out / "arm-e-seed0" / "metrics.jsonl").read_text().splitlines()[0])
    assert "reward/cut0_accuracy" in anytime  # thoughts at 4 (the ladder's top), cut at 0 (the held-out budget below)
    best = json.loads((out / "best-policy" / "bench_source.json").read_text())
    assert best["arm"] in results["accuracy"] and (out / "best-policy" / "model.safetensors").exists()


def test_cold_start_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    """A second bench run into the same OUT skips SFT when data and SFT settings match, and redoes it
    when any of them changed."""
    from benches import budgets
    from training import sft

    calls = []

    def fake_warm_up(cfg):
        calls.append(cfg)
        out = Path(cfg.output_dir)
        return out.mkdir(parents=True, exist_ok=True) or out

    monkeypatch.setattr(sft, "warm_up", fake_warm_up)
    data = make_arith_dataset(tmp_path / "data", n=4, seed=0)
    args = budgets.parse_args(["--quick", "--out", str(tmp_path)])
    for _ in range(2):
        assert budgets.cold_start(args, data, tmp_path / "sft", [0, 8]) == str(tmp_path / "sft")
    assert len(calls) == 1 and calls[0].short_thoughts == 0.5 and calls[0].steps == 1000
    assert calls[0].lr_schedule == "cosine" and calls[0].train_data == str(data)
    assert calls[0].budgets() == [0, 8] and calls[0].hint() is not None  # the bench's default: hinted
    args.short_thoughts = 0.0
    budgets.cold_start(args, data, tmp_path / "sft", [0, 8])
    assert len(calls) == 2 and calls[1].short_thoughts == 0.0


def test_arm_d_options_without_arm_d_are_refused():
    """Nothing accepted and ignored: the length term and the per-sample draw only exist in arm (d)."""
    from benches.budgets import main

    for extra in (["--length-coef", "0.1"], ["--budget-per", "sample"], ["--estimator", "best"], ["--length-passed-only"],
                  ["--budget-balance", "mass"]):
        with pytest.raises(SystemExit, match="arm \\(d\\) only"):
            main(["--only", "abc", *extra])
    for extra in (["--anytime-cuts", "4"], ["--anytime-answers", "1"]):
        with pytest.raises(SystemExit, match="arm \\(e\\) only"):
            main(["--only", "abcd", *extra])


def test_items_range_is_parsed_and_bounded():
    from benches.budgets import parse_items

    assert parse_items("3-8") == (3, 8) and parse_items("4-4") == (4, 4)
    for bad in ("3", "8-3", "0-4", "3-9", "a-b"):
        with pytest.raises(SystemExit, match="--items"):
            parse_items(bad)


def test_ladder_takes_full_as_the_budget_of_a_request_without_one():
    from benches.budgets import parse_ladder

    assert parse_ladder("8,12,32,full") == [8, 12, 32]  # sizing max_new_tokens: the numbers only
    assert parse_ladder("8,12,32,full", full=53) == [8, 12, 32, 53]
    assert parse_ladder("8,32", full=53) == [8, 32]
    with pytest.raises(SystemExit, match="takes budgets and 'full'"):
        parse_ladder("8,unlimited", full=53)
