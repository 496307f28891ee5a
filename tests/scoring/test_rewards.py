"""Verifiers on boxed answers, the format gate, style penalties and the domain registry."""

from __future__ import annotations

import pytest

from budget import BudgetParams, build_profile
from scoring.response import Response
from scoring.rewards import build_reward_fns, glm_reward, language_mix_score, repetition_score
from scoring.verifiers import (
    VERIFIERS, verify_counting, verify_exact, verify_grounding, verify_math, verify_multiple_choice,
    verify_numeric, verify_ocr, verify_temporal_grounding,
)

BOX = "<|begin_of_box|>{}<|end_of_box|>"


def response(thinking: str, answer: str) -> str:
    return f"<think>{thinking}</think><answer>{answer}</answer>"


@pytest.fixture(scope="module")
def split(tiny_model_dir):
    """text → Response through token ids, as the trainer does with rollout ids."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    profile = build_profile(tok, model_type="glm4v")
    return lambda text: Response.from_ids(tok.encode(text, add_special_tokens=False), profile, tok)


# ---- verifiers --------------------------------------------------------------------------------
@pytest.mark.parametrize(("pred", "ref", "score"), [
    ("1/2", "0.5", 1.0), ("\\frac{1}{2}", "1/2", 1.0), ("\\sqrt{4}", 2, 1.0), ("x = 5", "5", 1.0),
    ("3", "4", 0.0), ("", "4", 0.0),
])
def test_math(pred, ref, score):
    assert verify_math(pred, ref) == score


def test_numeric_tolerance():
    assert verify_numeric("99.5", 100) == 1.0  # within the default 1 %
    assert verify_numeric("98", 100) == 0.0
    assert verify_numeric("98", {"value": 100, "rel_tol": 0.05}) == 1.0
    assert verify_numeric("1,200 apples", 1200) == 1.0
    assert verify_numeric("about 0.301", {"value": 0.3, "abs_tol": 0.01, "rel_tol": 0}) == 1.0
    assert verify_numeric("none", 3) == 0.0


def test_counting_is_exact_and_reads_words():
    assert verify_counting("3", 3) == 1.0
    assert verify_counting("3 shapes", 3) == 1.0
    assert verify_counting("three", 3) == 1.0
    assert verify_counting("3.5", 3) == 0.0
    assert verify_counting("4", 3) == 0.0


def test_exact_and_multiple_choice():
    assert verify_exact(" Left. ", "left") == 1.0
    assert verify_exact("\\text{right}", ["right", "to the right"]) == 1.0
    assert verify_exact("up", "down") == 0.0
    for pred in ("C", "(C)", "c) 42", "C. forty-two"):
        assert verify_multiple_choice(pred, "C") == 1.0, pred
    assert verify_multiple_choice("B", "C") == 0.0
    assert verify_multiple_choice("Paris", "paris") == 1.0  # option text instead of a letter


def test_ocr_normalised_edit_distance():
    assert verify_ocr("hello  world", "hello world") == 1.0
    assert verify_ocr("hallo world", "hello world") == pytest.approx(1 - 1 / 11)
    assert verify_ocr("", "abcd") == 0.0


def test_grounding_iou():
    assert verify_grounding("[0, 0, 100, 100]", [0, 0, 100, 100]) == 1.0
    # overlap 50x100 = 5000; union 10000 + 10000 - 5000 = 15000
    assert verify_grounding("[50, 0, 150, 100]", [0, 0, 100, 100]) == pytest.approx(1 / 3)
    # two references, one matching prediction: mean IoU over max(1, 2) boxes
    assert verify_grounding("[0,0,100,100]", [[0, 0, 100, 100], [500, 500, 600, 600]]) == pytest.approx(0.5)
    assert verify_grounding("no box", [0, 0, 10, 10]) == 0.0


def test_temporal_grounding_iou():
    assert verify_temporal_grounding("[2, 6]", [2, 6]) == 1.0
    assert verify_temporal_grounding("from 0 to 4 s", [2, 6]) == pytest.approx(2 / 6)
    assert verify_temporal_grounding("[6, 2]", [2, 6]) == 0.0  # reversed span
    assert verify_temporal_grounding("[1]", [2, 6]) == 0.0


def test_registry_has_every_domain():
    assert set(VERIFIERS) == {"math", "numeric", "counting", "exact", "multiple_choice", "ocr", "grounding",
                              "temporal_grounding", "running_sum"}  # running sums: their own domain (issue 23)
    assert set(build_reward_fns()) == set(VERIFIERS)


# ---- format -----------------------------------------------------------------------------------
def test_layout_gate_on_ids(split):
    ok = split(response("hmm", "x " + BOX.format(3)))
    assert ok.well_formed and ok.boxed == "3" and ok.thinking == "hmm" and ok.answer == "x 3"
    assert split("  " + response("a", BOX.format(1)) + "\n").well_formed
    assert split(response("a", BOX.format(1)) + "<|endoftext|>").well_formed  # EOS may end it
    for bad in ("<think>a</think>" + BOX.format(1),  # no answer tags
                "hi " + response("a", BOX.format(1)),  # text before
                response("a", BOX.format(1)) + " more",  # text after
                response("a <think> b", BOX.format(1)),  # a tag twice
                "<answer>" + BOX.format(1) + "</answer><think>a</think>"):  # wrong order
        assert not split(bad).well_formed, bad


def test_boxed_exactly_one(split):
    assert split(response("t", "The count is " + BOX.format(" 3 "))).boxed == "3"
    assert split(response("t", "3")).boxed is None
    assert split(response("t", BOX.format(1) + BOX.format(2))).boxed is None
    assert split(response("t", "<|end_of_box|>3<|begin_of_box|>")).boxed is None


def test_forced_closing_splits_like_serving(tiny_model_dir, split):
    """A forced `</think><answer>` (budget 2) is the same split as the model closing itself."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    profile = build_profile(tok, model_type="glm4v")
    ids = tok.encode(response("one two", BOX.format(5)), add_special_tokens=False)
    forced = Response.from_ids(ids, profile, tok, params=BudgetParams(think_budget=2))
    thinking_len = len(tok.encode("one two", add_special_tokens=False))
    assert forced.answer_forced == (thinking_len == 2) and forced.well_formed and forced.boxed == "5"


# ---- style and the total ----------------------------------------------------------------------
def test_repetition_score():
    assert repetition_score("one two three four five") == 0.0
    # 8 words → 5 four-grams, "a b c d" twice → 1 - 4/5
    assert repetition_score("a b c d a b c d") == pytest.approx(0.2)


def test_language_mix_score():
    assert language_mix_score("only english words here 42") == 0.0
    assert language_mix_score("hello world 你好") == pytest.approx(0.5)  # 2 latin + 2 CJK
    assert language_mix_score("答案 is") == pytest.approx(1 / 3)


def test_glm_reward_components(split):
    fn = build_reward_fns(min_reward=0.0, repetition_weight=0.5, language_weight=0.5)["counting"]
    good = fn(split(response("two circles and a square", "There are " + BOX.format(3))), 3)
    assert good == {"reward": 1.0, "format": 1.0, "accuracy": 1.0, "repetition": 0.0, "language_mix": 0.0}
    wrong = fn(split(response("count", BOX.format(4))), 3)
    assert wrong["format"] == 1.0 and wrong["accuracy"] == 0.0 and wrong["reward"] == 0.0


def test_format_failure_gets_min_reward_even_with_right_answer(split):
    for text in ("<think>x</think>" + BOX.format(3), response("x", "3"), response("x", BOX.format(3) * 2)):
        out = glm_reward(split(text), 3, verifier=verify_counting, min_reward=-1.0)
        assert out["reward"] == -1.0 and out["format"] == 0.0 and out["accuracy"] == 0.0


def test_style_penalties_lower_the_reward(split):
    loop = "look again " * 10
    out = glm_reward(split(response(loop, BOX.format(3))), 3, verifier=verify_counting, repetition_weight=0.5)
    assert out["accuracy"] == 1.0
    assert out["reward"] == pytest.approx(1.0 - 0.5 * out["repetition"]) and out["repetition"] > 0.5
    mixed = glm_reward(split(response("count 一 二 三", BOX.format(3))), 3, verifier=verify_counting, language_weight=0.5)
    assert mixed["language_mix"] == pytest.approx(0.25) and mixed["reward"] == pytest.approx(1.0 - 0.125)
