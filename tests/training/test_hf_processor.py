"""HF `generate` on the tiny GLM-4.1V with several budgets in one batch: forced tokens land exactly."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoTokenizer, LogitsProcessorList

from budget import BudgetParams, build_profile, replay
from training.rollout.hf_processor import HFThinkBudgetProcessor

BUDGETS = [0, 1, 5, 20, None]
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return model, tok


def think_prompt(tok, text: str) -> list[int]:
    """Chat-templated prompt that already opens <think> (random weights rarely open it themselves)."""
    ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    return list(ids) + [tok.convert_tokens_to_ids("<think>")]


def generate(model, tok, prompts: list[list[int]], params: list[BudgetParams | None]) -> list[list[int]]:
    profile = build_profile(tok, model_type="glm4v")
    width = max(map(len, prompts))
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # [B, T] left-padded
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])  # [B, T]
    proc = HFThinkBudgetProcessor(profile, params, prompts)
    out = model.generate(
        input_ids=input_ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
        do_sample=False, logits_processor=LogitsProcessorList([proc]), pad_token_id=pad,
    )
    return [row[width:].tolist() for row in out]  # [B, NEW_TOKENS] each


def test_batch_budgets_land_forced_tokens_at_exact_positions(model_and_tokenizer):
    model, tok = model_and_tokenizer
    profile = build_profile(tok, model_type="glm4v")
    prompts = [think_prompt(tok, f"question {i}: how many shapes?") for i in range(len(BUDGETS))]
    params = [BudgetParams(think_budget=b) if b is not None else None for b in BUDGETS]
    outputs = generate(model, tok, prompts, params)
    close, ans = profile.closing_ids
    for budget, prompt, out in zip(BUDGETS, prompts, outputs):
        if budget is None:
            continue
        # The random model never closes by itself within the budget here, so the closing is forced.
        assert out[budget : budget + 2] == [close, ans], (budget, out)
        assert close not in out[:budget]
        state = replay(profile, BudgetParams(think_budget=budget), prompt, out)
        assert state.forced_positions == [budget, budget + 1]
        assert state.num_thinking_tokens == budget and state.answer_forced


def test_unbudgeted_row_matches_solo_generation(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompts = [think_prompt(tok, "a"), think_prompt(tok, "a")]
    batch = generate(model, tok, prompts, [BudgetParams(think_budget=3), None])
    solo = generate(model, tok, prompts[1:], [None])
    assert batch[1] == solo[0]
    assert batch[0][:3] == solo[0][:3]  # same prompt: identical until the budget forces


def test_min_think_with_continuation_keeps_thinking(model_and_tokenizer):
    model, tok = model_and_tokenizer
    profile = build_profile(tok, model_type="glm4v")
    wait_ids = tuple(tok.encode("Wait", add_special_tokens=False))
    prompt = think_prompt(tok, "b")
    params = BudgetParams(think_budget=12, min_think_tokens=8, continuation_ids=wait_ids)
    out = generate(model, tok, [prompt], [params])[0]
    state = replay(profile, params, prompt, out)
    # Nothing can close thinking before 8 tokens; the budget closes it at exactly 12.
    assert profile.think_close_id not in out[:8]
    assert state.num_thinking_tokens <= 12 and state.phase.name == "ANSWER"
    assert out[state.think_end] == profile.think_close_id
