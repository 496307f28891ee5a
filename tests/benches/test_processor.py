"""`thinkcap bench processor`: the padded-vocabulary model it can measure on, and one real run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from benches.processor import make_cases, padded_vocab_model, report
from thinkcap.cli import main as thinkcap


def test_padded_model_keeps_every_real_row_and_adds_zero_rows(tmp_path: Path, tiny_model_dir: Path):
    src = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, src)
    out = padded_vocab_model(src, 1536)
    assert out.name == "tiny-vocab1536" and padded_vocab_model(src, 1536) == out  # built once
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == 1536
    before, after = load_file(src / "model.safetensors"), load_file(out / "model.safetensors")
    for name in ("lm_head.weight", "model.language_model.embed_tokens.weight"):
        own = before[name].shape[0]
        assert after[name].shape == (1536, before[name].shape[1])
        assert after[name][:own].equal(before[name]) and not after[name][own:].any()
    assert (out / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    with pytest.raises(SystemExit, match="below the model's own vocabulary"):
        padded_vocab_model(src, 16)


def test_report_gives_shares_and_microseconds_per_step():
    cases = make_cases()
    for i, case in enumerate(cases):
        case.wall_tps, case.cpu_tps = [100.0, 110.0], [100.0, 110.0]
        case.budget_share, case.budget_us = [0.01 * i, 0.01 * i], [10.0 * i, 10.0 * i]
    text = report(cases, 4, 16, 2, vocab=151552)
    assert "vocabulary 151552" in text.splitlines()[0]
    grace = next(line for line in text.splitlines() if line.startswith("ours-grace"))
    assert "6.00%" in grace and "60.0" in grace  # share and us/step of the seventh case


@pytest.mark.slow
@pytest.mark.engine
def test_processor_bench_runs_every_case_on_a_padded_vocabulary(capsys):
    assert thinkcap(["bench", "processor", "--batch", "4", "--max-tokens", "16", "--runs", "1", "--vocab", "2048"]) == 0
    out = capsys.readouterr().out
    assert "vocabulary 2048" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("none", "ours", "builtin"))}
    assert set(rows) == {case.name for case in make_cases()}
    assert float(rows["ours-grace"].split()[6]) > 0  # the grace lane ran: time in budget code per step
