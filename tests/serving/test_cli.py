"""`thinkcap serve` argument parsing: vLLM's own serve flags, thinkcap's flags, and the defaults
thinkcap fills in (processor, reasoning parser, plugin allowlist)."""

from __future__ import annotations

import pytest

from serving.cli import build_parser, plugin_allowlist, prepare, settings_from_args
from vllm_adapter.engine_env import PROCESSOR_FQCN


@pytest.fixture(scope="module")
def parser():
    return build_parser(cpu=True)


def test_vllm_and_thinkcap_flags(parser, tmp_path):
    args = parser.parse_args([
        "some/model", "--port", "9001", "--api-key", "k", "--default-think-budget", "64",
        "--answer-reserve", "8", "--reasoning-effort-budgets", "low=10,high=99",
        "--allowed-local-media-path", str(tmp_path), "--served-model-name", "glm",
        "--max-model-len", "2048", "--enable-auto-tool-choice", "--tool-call-parser", "glm45",
    ])
    settings = settings_from_args(args)
    assert (settings.default_think_budget, settings.answer_reserve) == (64, 8)
    assert settings.reasoning_effort_budgets["low"] == 10 and settings.reasoning_effort_budgets["none"] == 0
    assert settings.media.allowed_local_media_path == tmp_path.resolve()
    assert args.port == 9001 and args.api_key == ["k"] and args.tool_call_parser == "glm45"  # vLLM's own
    assert args.enforce_eager  # CPU default


def test_prepare_serves_the_tiny_model_with_processor_and_parser(parser, tiny_model_dir):
    args = prepare(parser.parse_args([str(tiny_model_dir), "--logits-processors", "x.y:Z"]), cpu=True)
    assert args.logits_processors == ["x.y:Z", PROCESSOR_FQCN]  # theirs kept, ours listed once
    assert args.reasoning_parser == "glm41v" and args.structured_outputs_config.reasoning_parser == "glm41v"
    mine = prepare(parser.parse_args([str(tiny_model_dir), "--reasoning-parser", "glm45"]), cpu=True)
    assert mine.reasoning_parser == "glm45"  # a user's choice wins


def test_plugin_allowlist_keeps_what_vllm_would_load():
    names = plugin_allowlist({}).split(",")
    assert "thinkcap" in names and "thinkcap_glm41v" in names and "lora_filesystem_resolver" in names
    assert "lora_hf_hub_resolver" not in names  # opt-in in vLLM: naming it would switch it on
    assert plugin_allowlist({"VLLM_PLUGINS": "a,b"}) == "a,b,thinkcap"


@pytest.mark.parametrize("argv", [["--default-think-budget", "-5"], ["--default-think-budget", "x"],
                                  ["--reasoning-effort-budgets", "low:5"]])
def test_bad_flags_exit_with_a_message(parser, argv, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_budget_hint_flag_and_policy_folder(parser, tmp_path, capsys):
    from budget.hint import BudgetHint, write_policy_hint

    args = parser.parse_args(["m", "--budget-hint", "At most {budget} thinking tokens."])
    assert settings_from_args(args).hint() == BudgetHint("At most {budget} thinking tokens.")
    assert settings_from_args(parser.parse_args(["m"])).hint() is None  # not a policy folder: off
    write_policy_hint(tmp_path, BudgetHint("Budget: {budget}."))
    settings = settings_from_args(parser.parse_args([str(tmp_path)]))
    assert settings.hint() == BudgetHint("Budget: {budget}.")  # served as trained
    assert "thinkcap_policy.json" in capsys.readouterr().out
    assert settings_from_args(parser.parse_args([str(tmp_path), "--budget-hint", "off"])).hint() is None
    with pytest.raises(SystemExit):
        parser.parse_args(["m", "--budget-hint", "no placeholder"])
    assert "exactly one {budget}" in capsys.readouterr().err
