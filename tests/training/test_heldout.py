"""Held-out evaluation in training: the engine gets each budget as the rollouts' BudgetParams, greedy
by default; responses are scored by `thinkcap eval`'s scoring; metrics per budget and per domain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from budget import BudgetParams, build_profile
from training.config import ConfigError, GRPOConfig
from training.heldout import HeldOut, summarize_eval
from training.rollout.samples import Completion, rollout_budget


class FakeEngine:
    """Answers every prompt with a boxed 3 after `min(budget, 2)` thinking words."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.calls: list[dict] = []

    def generate(self, prompts, n, *, temperature, top_p, max_tokens, budget, seeds):
        self.calls.append({"prompts": len(prompts), "n": n, "temperature": temperature, "budget": budget,
                           "max_tokens": max_tokens, "seeds": seeds})
        thinking = " ".join(["hmm"] * min(budget.think_budget, 2))
        text = f"<think>{thinking}</think><answer><|begin_of_box|>3<|end_of_box|></answer>"
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return [[Completion(p.input_ids, ids, "stop") for _ in range(n)] for p in prompts]


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    rows = [{"id": "a", "domain": "counting", "prompt": "How many?", "answer": 3},
            {"id": "b", "domain": "counting", "prompt": "How many now?", "answer": 4},
            {"id": "c", "domain": "exact", "prompt": "Which digit?", "answer": "3"}]
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(eval_file: Path, **kw) -> GRPOConfig:
    kw = {"eval_think_budgets": "0,8", **kw}
    return GRPOConfig(eval_data=str(eval_file), eval_every=2, max_new_tokens=48, rollout_think_budget=16,
                      answer_reserve=8, steps=5, **kw)


def test_scores_every_budget_through_eval_scoring(tiny_model_dir: Path, eval_file: Path):
    from transformers import AutoProcessor

    from training.prompts import PromptEncoder

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    profile = build_profile(processor.tokenizer, model_type="glm4v")
    cfg = config(eval_file)
    engine = FakeEngine(processor.tokenizer)
    heldout = HeldOut(cfg, engine, PromptEncoder(processor), profile, processor.tokenizer, rank=0, world=1)
    assert [heldout.due(s) for s in range(1, 6)] == [False, True, False, True, True]  # every 2, and the last
    metrics = heldout.evaluate(step=2)
    # One call per budget, greedy, with the rollouts' BudgetParams (shrunk the same way).
    closing = len(profile.closing_ids)
    assert [c["budget"] for c in engine.calls] == [BudgetParams(think_budget=rollout_budget(b, 48, closing, 8))
                                                   for b in (0, 8)]
    assert all(c["temperature"] == 0 and c["n"] == 1 and c["prompts"] == 3 for c in engine.calls)
    assert engine.calls[0]["seeds"] == engine.calls[1]["seeds"]  # the same draws at every budget
    for b in (0, 8):
        assert metrics[f"eval/accuracy@{b}"] == pytest.approx(2 / 3)  # "3" is right for a and c, wrong for b
        assert metrics[f"eval/counting/accuracy@{b}"] == 0.5 and metrics[f"eval/exact/accuracy@{b}"] == 1.0
        assert metrics[f"eval/format@{b}"] == 1.0 and metrics[f"eval/responses@{b}"] == 3
    assert metrics["eval/think_len@0"] == 0 and metrics["eval/think_len@8"] > 0
    # Under torchrun each rank takes every world-th record (the rows are then gathered).
    other = HeldOut(cfg, engine, PromptEncoder(processor), profile, processor.tokenizer, rank=1, world=2)
    assert [r.id for r in other.records] == ["b"]


def test_summary_and_config_checks(tmp_path: Path, eval_file: Path):
    rows = [{"budget": 4, "domain": "x", "accuracy": 1.0, "format": 1.0, "think": 4},
            {"budget": 4, "domain": "y", "accuracy": 0.0, "format": 0.0, "think": 2}]
    assert summarize_eval(rows) == {"eval/accuracy@4": 0.5, "eval/format@4": 0.5, "eval/think_len@4": 3.0,
                                    "eval/responses@4": 2.0, "eval/x/accuracy@4": 1.0, "eval/y/accuracy@4": 0.0}
    assert config(eval_file, eval_think_budgets=[0, 4]).eval_budgets() == [0, 4]  # a YAML list
    with pytest.raises(ConfigError, match="eval_data set but eval_every is 0"):
        GRPOConfig(eval_data=str(eval_file))
    with pytest.raises(ConfigError, match="needs eval_data"):
        GRPOConfig(eval_every=5)
    with pytest.raises(ConfigError, match="eval_temperature"):
        config(eval_file, eval_samples=4)
    with pytest.raises(ConfigError, match="exceeds max_new_tokens"):
        config(eval_file, eval_think_budgets="64")
    with pytest.raises(ConfigError, match="distinct budgets"):
        config(eval_file, eval_think_budgets="8,8")
