"""From engine output to loss-ready samples: forced positions masked, truncation without forced answering."""

from __future__ import annotations

import pytest

from budget import BudgetParams, ThinkProfile
from training.prompts import EncodedPrompt
from training.rollout.samples import Completion, Outcome, rollout_budget, to_sample

OPEN, CLOSE, ANS, ANS_END, EOS = 1, 2, 3, 4, 0
PROFILE = ThinkProfile(family="glm4.1v", think_open_id=OPEN, think_close_id=CLOSE, closing_ids=(CLOSE, ANS),
                       eos_token_ids=frozenset({EOS}), answer_open_id=ANS, answer_close_id=ANS_END)
PROMPT = EncodedPrompt(text="q", input_ids=[7, 8], mm_token_type_ids=[0, 0], vllm_mm_data={}, tensors={})


def sample(ids: list[int], budget: int, forced_answering: bool = True, finish: str = "stop"):
    return to_sample(Completion([7, 8], ids, finish, [-0.5] * len(ids)), 0, PROMPT, PROFILE,
                     BudgetParams(think_budget=budget), budget, forced_answering)


def test_rollout_budget_keeps_room_for_the_answer():
    assert rollout_budget(128, 256, closing_len=2, answer_reserve=16) == 128
    assert rollout_budget(128, 100, closing_len=2, answer_reserve=16) == 100 - 1 - 2 - 16
    assert rollout_budget(None, 64, closing_len=2, answer_reserve=16) == 45  # "unlimited" still answers


def test_forced_closing_tokens_are_masked():
    # <think> a b c | forced </think><answer> | x </answer> EOS   with budget 3
    ids = [OPEN, 10, 11, 12, CLOSE, ANS, 20, ANS_END, EOS]
    s = sample(ids, budget=3)
    assert s.loss_mask == [1, 1, 1, 1, 0, 0, 1, 1, 1]
    assert s.outcome is Outcome.FORCED and s.answer_forced and s.num_thinking_tokens == 3 and not s.truncated
    assert s.response_ids == ids and s.engine_logprobs == [-0.5] * len(ids)


def test_model_closing_on_its_own_is_not_masked():
    ids = [OPEN, 10, CLOSE, ANS, 20, ANS_END, EOS]
    s = sample(ids, budget=3)
    assert s.loss_mask == [1] * len(ids) and not s.answer_forced and s.num_thinking_tokens == 1


def test_budget_zero_forces_right_after_think_open():
    s = sample([OPEN, CLOSE, ANS, 20, EOS], budget=0)
    assert s.loss_mask == [1, 0, 0, 1, 1] and s.answer_forced


def test_without_forced_answering_over_budget_is_cut_and_marked():
    ids = [OPEN, 10, 11, 12, 13, 14, CLOSE, ANS, 20, ANS_END, EOS]  # 5 thinking tokens
    s = sample(ids, budget=3, forced_answering=False)
    assert s.truncated and s.response_ids == [OPEN, 10, 11, 12] and s.loss_mask == [1] * 4
    assert s.num_thinking_tokens == 3 and s.engine_logprobs == [-0.5] * 4 and s.outcome is Outcome.TRUNCATED


def test_without_forced_answering_within_budget_is_kept():
    ids = [OPEN, 10, 11, CLOSE, ANS, 20, ANS_END, EOS]
    s = sample(ids, budget=3, forced_answering=False)
    assert not s.truncated and s.response_ids == ids and s.loss_mask == [1] * len(ids)


def test_without_forced_answering_length_cut_while_thinking_is_truncated():
    s = sample([OPEN, 10, 11], budget=3, forced_answering=False, finish="length")
    assert s.truncated


@pytest.mark.parametrize("forced_answering", [True, False])
def test_no_thinking_at_all(forced_answering):
    s = sample([ANS, 20, ANS_END, EOS], budget=3, forced_answering=forced_answering)
    assert s.loss_mask == [1, 1, 1, 1] and not s.truncated and s.num_thinking_tokens == 0
