"""`thinkcap train` as a user types it: make data, train from YAML with overrides, label difficulty."""

from __future__ import annotations

import json
from pathlib import Path

from thinkcap.cli import main as thinkcap


def test_make_data_then_train_from_yaml(tmp_path: Path, tiny_model_dir: Path, capsys):
    assert thinkcap(["train", "--make-data", str(tmp_path / "data"), "--n", "6"]) == 0
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 6
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {tiny_model_dir}\ntrain_data: data/train.jsonl\noutput_dir: run\nsteps: 5\n"
                   "prompts_per_step: 2\ngroup_size: 2\nmax_new_tokens: 24\nanswer_reserve: 4\n")
    args = ["train", str(cfg), "--steps", "1", "--rollout_engine", "hf", "--rollout_think_budget", "8",
            "--progress_bar", "false"]
    assert thinkcap(args) == 0
    run = tmp_path / "run"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1]  # --steps 1 overrode the YAML's 5
    policy = run / "checkpoints" / "step-000001" / "policy"
    assert (policy / "model.safetensors").exists() and (policy / "tokenizer_config.json").exists()
    assert str(policy) in capsys.readouterr().out


def test_label_difficulty_writes_tiers(tmp_path: Path, warm_model_dir: Path, synthetic_data: Path):
    src = tmp_path / "few.jsonl"
    src.write_text("".join(synthetic_data.read_text().splitlines(keepends=True)[:3]))
    for sub in ("images", "videos"):
        (tmp_path / sub).symlink_to(synthetic_data.parent / sub)
    out = tmp_path / "labelled.jsonl"
    assert thinkcap(["train", "--label-difficulty", str(src), str(out), "--model", str(warm_model_dir), "--k", "4",
                     "--engine", "hf", "--think-budget", "16", "--max-new-tokens", "48"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["pass_rate"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert row["difficulty"] == min(2, int((1 - row["pass_rate"]) * 3))
        assert row["pass_at_k"] == float(row["pass_rate"] > 0)
