"""GRPOConfig: help on every field, YAML + command-line overrides, cross-field checks that say what to change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.cli import main as cli_main
from training.config import ConfigError, GRPOConfig


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
    with pytest.raises(ConfigError, match="unrecognized arguments: --no_such_flag"):
        GRPOConfig.from_yaml(path, ["--no_such_flag", "1"])
    path.write_text("repetition_penalty: 0.3\n")
    with pytest.raises(ValueError, match="renamed 'repetition_penalty_weight'"):
        GRPOConfig.from_yaml(path)


def test_hyphen_and_underscore_flags_are_one_field(tmp_path: Path):
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 2\n")
    a = GRPOConfig.from_yaml(path, ["--rollout-think-budget", "32", "--micro-batch-size", "2"])
    b = GRPOConfig.from_yaml(path, ["--rollout_think_budget", "32", "--micro_batch_size", "2"])
    assert a == b and a.rollout_think_budget == 32 and a.micro_batch_size == 2


def test_paths_yaml_relative_in_yaml_cwd_relative_in_flags(tmp_path: Path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "my-model").mkdir()
    path = tmp_path / "conf" / "cfg.yaml"
    path.write_text("model: my-model\ntrain_data: d.jsonl\noutput_dir: out\n")
    monkeypatch.chdir(tmp_path)
    cfg = GRPOConfig.from_yaml(path, ["--output-dir", "elsewhere"])
    assert cfg.model == str(tmp_path / "conf" / "my-model")  # exists beside the YAML: a path
    assert cfg.train_data == str(tmp_path / "conf" / "d.jsonl")
    assert cfg.output_dir == str(tmp_path / "elsewhere")  # a flag: relative to the current directory
    path.write_text("model: zai-org/GLM-4.1V-9B-Thinking\n")
    assert GRPOConfig.from_yaml(path).model == "zai-org/GLM-4.1V-9B-Thinking"  # not a path here: a hub id


def test_config_errors_print_one_line_and_exit_2(tmp_path: Path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 0\n")
    assert cli_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "thinkcap train: error: steps must be >= 1; got 0"
    path.write_text(f"train_data: {tmp_path / 'missing.jsonl'}\nrollout_engine: hf\n")
    assert cli_main([str(path)]) == 2
    assert "does not exist" in capsys.readouterr().err and "Traceback" not in err


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
    assert "--rollout-think-budget" in out and "--make-data" in out and "torchrun" in out
    assert "config fields" in out and "usage:" not in out and out.splitlines()[0].startswith("`thinkcap train`")
    fields = out.split("config fields")[1].splitlines()[1]
    assert fields.startswith("  --model MODEL")  # the field list starts cleanly, no broken usage tail


def test_wandb_is_refused_clearly_when_missing():
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(ConfigError, match="wandb_project='demo' needs wandb"):
        GRPOConfig(wandb_project="demo")
