"""SFTConfig: flags, YAML and errors; the hinted budget of a demonstration is drawn apart from its
thought; a hinted SFT run records its hint beside the weights."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from budget.hint import BudgetHint, read_policy_hint
from tasks.records import load_records
from tasks.running_sums import make_arith_dataset
from training.config_load import ConfigError
from training.sft import build_cli, demonstration_batches, load_config, main
from training.sft_config import SFTConfig

HINT = "Think for at most {budget} tokens."


def test_positionals_flags_and_old_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(["data.jsonl", "out", "--steps", "7", "--batch-size", "4", "--lr-schedule", "cosine",
                       "--short-thoughts", "0.5", "--answer-noise", "0.1", "--seed", "3", "--no-progress"])
    assert (cfg.train_data, cfg.output_dir) == (str(tmp_path / "data.jsonl"), str(tmp_path / "out"))
    assert (cfg.steps, cfg.batch_size, cfg.lr_schedule, cfg.short_thoughts, cfg.answer_noise, cfg.seed) == \
        (7, 4, "cosine", 0.5, 0.1, 3)
    assert cfg.progress_bar is False and cfg.model == "tiny"
    assert load_config(["--steps", "2", "data.jsonl", "out"]).steps == 2  # flags before the positionals too


def test_yaml_then_flags(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "sft.yaml").write_text(f"train_data: d.jsonl\nsteps: 9\nbudget_hint: '{HINT}'\n"
                                               "hint_budgets: 0,4,8\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(["cfg/sft.yaml", "--steps", "11"])
    assert cfg.train_data == str(tmp_path / "cfg" / "d.jsonl")  # relative to the YAML's folder
    assert cfg.steps == 11 and cfg.budgets() == [0, 4, 8] and cfg.hint() == BudgetHint(HINT)


def test_help_lists_every_field():
    text = build_cli().format_help()
    for f in dataclasses.fields(SFTConfig):
        assert f"--{f.name.replace('_', '-')}" in text and f.metadata["help"]


@pytest.mark.parametrize("argv, words", [
    (["--hint-budgets", "0,4", "d", "o"], ["hint_budgets", "budget_hint"]),
    (["--budget-hint", "at most {b}", "d", "o"], ["budget_hint", "{budget}"]),
    (["--budget-hint", "at most {budget}", "d", "o"], ["budget_hint", "hint_budgets"]),  # a hint no prompt shows
    (["--budget-hint", HINT, "--hint-budgets", "0,x", "d", "o"], ["hint_budgets", "'x'"]),
    (["--budget-hint", HINT, "--hint-budgets", "-4", "d", "o"], ["hint_budgets", ">= 0"]),
    (["--steps", "0", "d", "o"], ["steps", ">= 1"]),
    (["--short-thoughts", "2", "d", "o"], ["short_thoughts", "[0, 1]"]),
    (["--think-sentences-min", "5", "--think-sentences-max", "3", "d", "o"], ["think_sentences_max"]),
    (["--lr-schedule", "linear", "d", "o"], ["lr_schedule", "cosine"]),
    (["only-one"], ["DATA OUT"]),
    (["d", "o", "--train-data", "x"], ["train_data", "twice"]),
    (["--think-sentences", "3", "d", "o"], ["--think-sentences"]),
])
def test_errors_say_what_to_change(argv, words):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_main_prints_one_line_and_exits_2(capsys):
    assert main(["--hint-budgets", "0,4", "d", "o"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m training.sft: error: hint_budgets") and err.count("\n") == 1


def _draws(records, **kw):
    cfg = SFTConfig(train_data="unused", batch_size=8, **kw)
    batches = demonstration_batches(records, cfg)
    return [demo for _ in range(25) for demo in next(batches)]


def test_hinted_budget_is_drawn_apart_from_the_thought(tmp_path):
    records = load_records(make_arith_dataset(tmp_path, n=40, seed=0))
    hinted = {"budget_hint": HINT, "hint_budgets": "0,4,8,12,16,20,32"}
    by_form = {share: _draws(records, short_thoughts=share, **hinted) for share in (0.0, 0.5, 1.0)}
    budgets = [d.budget for d in by_form[0.0]]
    # the form of the thought never moves the draw, and the hint never moves the demonstrations
    assert all([d.budget for d in demos] == budgets for demos in by_form.values())
    plain = _draws(records, short_thoughts=0.5)
    assert [(d.record.id, d.text) for d in plain] == [(d.record.id, d.text) for d in by_form[0.5]]
    assert all(d.budget is None for d in plain)
    # within one run both forms meet every budget: the hint says nothing about the form yet
    mixed = by_form[0.5]
    short = [d.budget for d in mixed if "=" not in d.text]
    long_ = [d.budget for d in mixed if "=" in d.text]
    assert set(short) == set(long_) == {0, 4, 8, 12, 16, 20, 32}
    assert max(Counter(budgets).values()) < 2 * min(Counter(budgets).values())  # roughly uniform over 200
    # seeded: the same seed draws the same budgets, another seed others
    assert [d.budget for d in _draws(records, **hinted)] == budgets
    assert [d.budget for d in _draws(records, seed=1, **hinted)] != budgets


def test_form_follows_hint_diagnostic(tmp_path):
    """The diagnostic cold start: short below the threshold, long from it, for every drawn budget."""
    records = load_records(make_arith_dataset(tmp_path, n=40, seed=0))
    demos = _draws(records, budget_hint=HINT, hint_budgets="4,8,32,53", form_follows_hint=32, short_thoughts=0.5)
    assert {d.budget for d in demos} == {4, 8, 32, 53}
    assert all(("=" in d.text) == (d.budget >= 32) for d in demos)
    with pytest.raises(ConfigError, match="form_follows_hint needs hint_budgets"):
        SFTConfig(train_data="x", form_follows_hint=32)


def test_hinted_sft_run_hints_its_prompts_and_records_the_hint(tiny_model_dir, tmp_path, monkeypatch):
    from training import sft

    seen = []

    class Spy(sft.PromptEncoder):
        def __call__(self, record, budget=None):
            seen.append(self.messages(record, budget)[-1]["content"][-1]["text"])  # text parts: a list
            return super().__call__(record, budget)

    monkeypatch.setattr(sft, "PromptEncoder", Spy)
    data = make_arith_dataset(tmp_path / "data", n=6, seed=0)
    cfg = SFTConfig(model=str(tiny_model_dir), train_data=str(data), output_dir=str(tmp_path / "out"), steps=2,
                    batch_size=2, budget_hint=HINT, hint_budgets="4,8", progress_bar=False)
    out = sft.warm_up(cfg)
    assert read_policy_hint(out) == (True, BudgetHint(HINT))
    assert len(seen) == 4 and all(text.endswith(("at most 4 tokens.", "at most 8 tokens.")) for text in seen)
    assert len((out / "warmup_loss.txt").read_text().split()) == 2
