"""Validation, answer-reserve arithmetic, profiles built from tokenizers, and purity of `budget`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget.fit import RESERVE_FLOOR
from budget import (
    BudgetError,
    BudgetParams,
    ProfileError,
    build_profile,
    effective_budget,
    params_from_args,
    parse_think_budget,
)


class FakeTokenizer:
    def __init__(self, tokens: list[str], eos: str | None = None):
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.eos_token_id = self.vocab.get(eos) if eos else None

    def get_vocab(self) -> dict[str, int]:
        return self.vocab


GLM_TOKENS = ["a", "<|endoftext|>", "<|user|>", "<|observation|>", "<think>", "</think>", "<answer>",
              "</answer>", "<|begin_of_box|>", "<|end_of_box|>"]


@pytest.mark.parametrize("value,expected", [(None, None), (-1, None), (0, 0), (7, 7)])
def test_parse_think_budget_accepts(value, expected):
    assert parse_think_budget(value) == expected


@pytest.mark.parametrize("value", [True, False, -2, 1.5, "10", [3]])
def test_parse_think_budget_rejects(value):
    with pytest.raises(BudgetError, match="think_budget"):
        parse_think_budget(value)


def test_params_from_args_aliases_and_conflicts():
    assert params_from_args({"thinking_token_budget": 5}) == BudgetParams(think_budget=5)
    assert params_from_args({"think_budget": 5, "thinking_token_budget": 5}).think_budget == 5
    with pytest.raises(BudgetError, match="conflicting"):
        params_from_args({"think_budget": 5, "thinking_token_budget": 6})
    assert params_from_args({}) is None
    assert params_from_args({"think_budget": None}) is None  # unlimited, no minimum: nothing to do
    assert params_from_args({"other": 1}) is None
    with pytest.raises(BudgetError, match="cannot exceed"):
        params_from_args({"think_budget": 2, "min_think_tokens": 3})
    with pytest.raises(BudgetError, match="list of token ids"):
        params_from_args({"think_budget": 2, "think_budget_message_ids": "Wait"})


def test_extra_args_round_trip():
    params = BudgetParams(think_budget=9, min_think_tokens=2, continuation_ids=(5,), message_ids=(6, 7))
    assert params_from_args(params.to_extra_args()) == params


@given(budget=st.one_of(st.none(), st.integers(0, 500)), max_tokens=st.integers(0, 600), reserve=st.integers(0, 50))
def test_effective_budget_keeps_answer_reserve(budget, max_tokens, reserve):
    """Training's strict form of the fit rule: the answer keeps at least the reserve's floor."""
    closing, floor = 2, min(reserve, RESERVE_FLOOR)
    if max_tokens < closing + floor:
        with pytest.raises(BudgetError, match="raise max_tokens"):
            effective_budget(budget, max_tokens, closing, reserve)
        return
    eff = effective_budget(budget, max_tokens, closing, reserve)
    assert eff is not None and eff + closing + floor <= max_tokens
    if budget is not None:
        assert eff <= budget
        assert eff == budget or eff + closing + min(reserve, max_tokens - closing) == max_tokens


def test_effective_budget_without_max_tokens_is_unchanged():
    assert effective_budget(None, None, 2, 10) is None
    assert effective_budget(5, None, 2, 10) == 5


def test_profiles_by_family():
    glm = build_profile(FakeTokenizer(GLM_TOKENS, eos="<|endoftext|>"))
    assert glm.family == "glm4.1v" and glm.closing_ids == (5, 6)
    assert glm.eos_token_ids == {1, 2, 3} and glm.box_open_id == 8
    glm45 = build_profile(FakeTokenizer(GLM_TOKENS), model_type="glm4v_moe")
    assert glm45.family == "glm4.5v" and glm45.closing_ids == (5,)
    qwen = build_profile(FakeTokenizer(["x", "<think>", "</think>", "<|im_end|>"], eos="<|im_end|>"))
    assert qwen.family == "generic" and qwen.closing_ids == (2,) and qwen.eos_token_ids == {3}


def test_profile_errors_are_clear():
    with pytest.raises(ProfileError, match="no single-token <think>"):
        build_profile(FakeTokenizer(["a", "b"]))
    with pytest.raises(ProfileError, match="unknown profile family"):
        build_profile(FakeTokenizer(GLM_TOKENS), family="nope")
    with pytest.raises(ProfileError, match="lacks"):
        build_profile(FakeTokenizer(["<think>", "</think>"]), family="glm4.1v")


def test_budget_imports_without_torch():
    """`budget` must import in an interpreter where torch/transformers/vllm cannot be imported."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'vllm', 'numpy'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import budget\n"
        "from budget import ThinkState, BudgetParams, build_profile\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
