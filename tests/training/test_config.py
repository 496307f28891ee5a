"""GRPOConfig: help on every field, YAML + command-line overrides, cross-field checks that say what to change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.cli import main as cli_main
from training.config import GRPOConfig


def test_every_field_has_help_and_default():
    for f in dataclasses.fields(GRPOConfig):
        assert f.metadata.get("help"), f.name
        assert f.default is not dataclasses.MISSING, f.name


def test_report_defaults():
    cfg = GRPOConfig()
    assert (cfg.clip_low, cfg.clip_high, cfg.kl_coef, cfg.top_p) == (0.2, 0.28, 0.0, 1.0)
    assert cfg.loss_aggregation == "sample" and cfg.forced_answering and cfg.curriculum and cfg.dynamic_sampling


def test_yaml_with_overrides(tmp_path: Path):
    path = tmp_path / "cfg.yaml"
    path.write_text("train_data: data/train.jsonl\nlr: 2.0e-6\nsteps: 5\nforced_answering: true\n")
    cfg = GRPOConfig.from_yaml(path, ["--lr", "1e-5", "--rollout_think_budget", "64", "--forced_answering", "false"])
    assert cfg.lr == 1e-5 and cfg.steps == 5 and cfg.rollout_think_budget == 64 and not cfg.forced_answering
    assert cfg.train_data == str(tmp_path / "data" / "train.jsonl")  # relative to the YAML
    assert GRPOConfig.from_yaml(path, ["--rollout_think_budget", "null", "--forced_answering", "true"]).rollout_think_budget is None


def test_yaml_errors(tmp_path: Path):
    path = tmp_path / "cfg.yaml"
    path.write_text("learning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown config fields \\['learning_rate'\\]"):
        GRPOConfig.from_yaml(path)
    path.write_text("steps: 1\n")
    with pytest.raises(SystemExit):
        GRPOConfig.from_yaml(path, ["--no_such_flag", "1"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rollout_think_budget": 250, "max_new_tokens": 256}, "raise max_new_tokens to at least 269"),
    ({"num_minibatches": 5, "group_size": 4}, "num_minibatches \\(5\\) must be <= group_size"),
    ({"group_size": 1}, "group_size must be >= 2"),
    ({"loss_aggregation": "seq"}, "loss_aggregation must be one of"),
    ({"forced_answering": False, "rollout_think_budget": None}, "set a budget"),
    ({"tier_min_weight": 0.5, "num_tiers": 3}, "tier_min_weight must be in"),
    ({"oversample_ema": 1.0}, "oversample_ema must be in \\(0, 1\\)"),
    ({"keep_checkpoints": 0}, "keep_checkpoints must be >= 1"),  # [:-0] would have kept every checkpoint
    ({"answer_reserve": -1}, "answer_reserve must be >= 0"),
])
def test_cross_field_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**kwargs)


def test_cli_help_lists_fields(capsys):
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--rollout_think_budget" in out and "--make-data" in out and "torchrun" in out
