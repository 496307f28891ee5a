"""`thinkcap serve` argument parsing: our flags, vLLM's engine flags, and how they meet."""

from __future__ import annotations

import pytest

from serving.cli import build_parser, engine_args_from, settings_from_args


@pytest.fixture(scope="module")
def parser():
    return build_parser(cpu=True)


def test_server_and_engine_flags(parser, tmp_path):
    args = parser.parse_args([
        "some/model", "--port", "9001", "--api-key", "k", "--default-think-budget", "64",
        "--answer-reserve", "8", "--reasoning-effort-budgets", "low=10,high=99", "--video-fps", "1.5",
        "--allowed-local-media-path", str(tmp_path), "--served-model-name", "glm",
        "--max-model-len", "2048", "--tensor-parallel-size", "1",
    ])
    settings = settings_from_args(args, args.model_tag)
    assert (settings.port, settings.api_key, settings.default_think_budget, settings.answer_reserve) == (9001, "k", 64, 8)
    assert settings.reasoning_effort_budgets == {"low": 10, "high": 99}
    assert settings.model_name == "glm" and settings.model == "some/model"
    assert settings.media.video_fps == 1.5 and settings.media.allowed_local_media_path == tmp_path.resolve()
    engine = engine_args_from(args, "some/model")
    assert engine.model == "some/model" and engine.max_model_len == 2048 and engine.enforce_eager  # CPU default


def test_defaults_and_unlimited(parser):
    args = parser.parse_args(["--default-think-budget", "-1"])
    assert args.model_tag is None and args.model is None  # → the tiny model
    settings = settings_from_args(args, "m")
    assert settings.default_think_budget is None and settings.answer_reserve == 16 and settings.model_name == "m"


@pytest.mark.parametrize("argv", [["--default-think-budget", "-5"], ["--default-think-budget", "x"],
                                  ["--reasoning-effort-budgets", "low:5"]])
def test_bad_flags_exit_with_a_message(parser, argv, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert "error" in capsys.readouterr().err
