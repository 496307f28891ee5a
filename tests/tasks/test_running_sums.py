"""The running-sum task: records, the worked thought cold-start SFT imitates, and the bench smoke run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tasks.records import load_records
from training.sft import cosine_lr, demonstration
from tasks.running_sums import make_arith_dataset, make_record, worked_thought


def test_records_and_worked_thoughts_are_correct(tmp_path):
    path = make_arith_dataset(tmp_path, n=50, seed=3)
    assert path.read_text() == make_arith_dataset(tmp_path / "again", n=50, seed=3).read_text()
    for raw, record in zip(map(json.loads, path.read_text().splitlines()), load_records(path)):
        steps = worked_thought(record).split()
        labels, totals = [x[0] for x in steps], [int(x.split("=")[1]) for x in steps]
        assert 3 <= len(labels) <= 6 and "".join(labels) == "abcdefgh"[:len(labels)]
        digits = [int(x[1:]) for x in raw["prompt"].split(": ")[1].split(". ")[0].split()]
        assert [int(x[1:x.index("=")]) for x in steps] == digits
        assert totals == [sum(digits[:k + 1]) for k in range(len(digits))]
        assert totals[-1] == raw["answer"] == record.answer and record.domain == "running_sum"


def test_demonstration_uses_the_worked_thought_only_for_its_task(tmp_path, synthetic_data):
    record = load_records(make_arith_dataset(tmp_path, n=1, seed=0))[0]
    text = demonstration(record, random.Random(0), (2, 3), 0.0)
    assert text == (f"<think>{worked_thought(record)}</think><answer><|begin_of_box|>{record.answer}"
                    "<|end_of_box|></answer>")
    image_record = load_records(synthetic_data)[0]
    assert worked_thought(image_record) is None
    assert "<think>" in demonstration(image_record, random.Random(0), (2, 3), 0.0)


def test_short_thought_writes_only_the_totals(tmp_path):
    record = load_records(make_arith_dataset(tmp_path, n=1, seed=0))[0]
    long, short = worked_thought(record).split(), worked_thought(record, short=True).split()
    assert short == [f"{step[0]}{step.split('=')[1]}" for step in long]  # a3=3 b5=8 -> a3 b8
    texts = {demonstration(record, random.Random(i), (2, 3), 0.0, short_thoughts=0.5) for i in range(20)}
    assert {t.split("</think>")[0].removeprefix("<think>") for t in texts} == {" ".join(long), " ".join(short)}


def test_cold_start_schedule_warms_up_then_decays_to_the_floor():
    factors = [cosine_lr(step, steps=100) for step in range(100)]
    assert factors[0] == 0.2 and factors[4] == 1.0  # 5 % linear warm-up
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))  # then never rises
    assert 0.1 <= factors[-1] < 0.11


def test_make_record_digit_range():
    rec = make_record(random.Random(1), 7, items=(2, 2))
    assert rec["id"] == "running_sum-00007" and rec["prompt"].startswith("Add up: a") and 2 <= rec["answer"] <= 18


@pytest.mark.slow
def test_bench_budget_arms_smoke(tmp_path, warm_model_dir):
    """Every arm trains one step and is scored at each budget; results and plot are written. Starts
    from the shared format warm-up (--sft-model): a model with 2 SFT steps emits stray <|image|> ids."""
    from benches import learning

    out = tmp_path / "bench"
    rc = learning.main(["--arms", "budget", "--out", str(out), "--n", "16", "--held-out", "4",
                              "--sft-model", str(warm_model_dir), "--steps", "1", "--seeds", "1", "--prompts", "2", "--group", "2",
                              "--choices", "0,4", "--budget", "8", "--eval-budgets", "0,full", "--engine", "hf"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["accuracy"]) == 4  # the SFT model and three arms
    for per_budget in results["accuracy"].values():
        assert set(per_budget) == {"0", "full"} and all(0 <= lo <= m <= hi <= 1 for m, lo, hi in per_budget.values())
    assert (out / "budget_curve.png").stat().st_size > 0
    drawn = [json.loads(line) for line in (out / "arm-b-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert drawn[0]["rollout/think_budget_mean"] in (0.0, 2.0, 4.0)
    assert set(results["think_tokens"]) == set(results["accuracy"])
    assert results["think_tokens"][next(iter(results["think_tokens"]))]["0"] == 0  # budget 0: no thought at all
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
