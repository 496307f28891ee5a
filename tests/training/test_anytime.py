"""`anytime_cuts`: each thought is cut at the listed budgets and answered there, on the real
tokenizer, chat template and HF rollout engine of the tiny model."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import AutoProcessor

from budget import BudgetParams, build_profile, replay
from tasks.records import load_records
from tasks.running_sums import make_arith_dataset
from training.config import ConfigError, GRPOConfig
from training.learner.grpo import group_advantages
from training.learner.policy import load_policy
from training.prompts import PromptEncoder
from training.rollout.anytime import parse_cuts
from training.rollout.collect import Collected, RolloutContext, _roll
from training.rollout.samples import HFEngine, rollout_params


def test_parse_cuts_and_config_refusals():
    assert parse_cuts("8, 4,4") == [4, 8] and parse_cuts(" ") == []
    for text in ("x", "-1,4"):
        with pytest.raises(ValueError, match="anytime_cuts"):
            parse_cuts(text)
    base = {"train_data": "x", "rollout_think_budget": 16, "max_new_tokens": 48}
    assert GRPOConfig(**base, anytime_cuts="4,8").anytime_cuts == "4,8"
    for bad, match in ((dict(anytime_cuts="4,16"), "below rollout_think_budget"),
                       (dict(anytime_cuts="4", rollout_budget_choices="8,16"), "leave rollout_budget_choices empty"),
                       (dict(anytime_cuts="4", anytime_answers=0), "anytime_answers must be >= 1"),
                       (dict(anytime_answers=3), "anytime_cuts is empty"),
                       (dict(anytime_cuts="4", forced_close_penalty=0.1, form_exploration=0.25),
                        "form_exploration, forced_close_penalty"),
                       (dict(anytime_cuts="4,x"), "comma")):
        with pytest.raises(ConfigError, match=match):
            GRPOConfig(**{**base, **bad})


def _thinking_reward(response, answer):
    """Deterministic and informative on a random model: a thought's reward is its length, an
    answer's parity tells answers from one prefix apart."""
    return {"reward": response.num_thinking_tokens / 10 + 0.05 * (len(response.answer) % 2), "format": 1.0,
            "accuracy": float(response.num_thinking_tokens >= 8)}


@pytest.fixture(scope="module")
def rolled(tmp_path_factory, tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tok = processor.tokenizer
    cfg = GRPOConfig(model=str(tiny_model_dir), train_data="x", rollout_think_budget=8, anytime_cuts="2,5",
                     anytime_answers=2, group_size=3, max_new_tokens=32, answer_reserve=8)
    policy = load_policy(str(tiny_model_dir))
    profile = build_profile(tok, model_type=policy.config.model_type)
    engine = HFEngine(policy, profile, tok.pad_token_id, [tok.convert_tokens_to_ids("<|endoftext|>")])
    records = load_records(make_arith_dataset(tmp_path_factory.mktemp("d"), n=2, seed=0))
    params = rollout_params(8, cfg, profile)
    encoder = PromptEncoder(processor)
    # The random model never writes `<think>`: the prompt opens the thought (as Qwen3's and
    # DeepSeek-R1's templates do), so every rollout thinks until the budget forces its close.
    opened = lambda record, budget=None, prefix="": encoder(record, budget, "<think>" + prefix)  # noqa: E731
    ctx = RolloutContext(cfg, engine, opened, profile, tok, {"running_sum": _thinking_reward},
                         params, params.think_budget, 0, 1, torch.device("cpu"))
    out = Collected()
    torch.manual_seed(0)
    _roll(ctx, 1, 0, records, out)
    return out, profile, params, cfg


def test_each_thought_is_answered_at_every_cut_below_its_length(rolled):
    out, profile, params, cfg = rolled
    thoughts = [s for s in out.samples if s.cut is None]
    answers = [s for s in out.samples if s.cut is not None]
    assert len(thoughts) == 6
    for s in thoughts:
        state = replay(profile, params, s.prompt.input_ids, s.response_ids)
        assert state.num_thinking_tokens == 8 and state.answer_forced
        # The whole rollout, the forced close and the answer masked: the answer is trained as an answer.
        start = state.answer_start
        assert s.loss_mask == [0 if i in state.forced_positions or i >= start else 1 for i in range(len(s.response_ids))]
        per_cut = [s.reward["cut2_accuracy"], s.reward["cut5_accuracy"]]
        assert per_cut == [0.0, 0.0]  # `accuracy` is thinking >= 8: the cuts at 2 and 5 fail, the ending passes
        # The score averages the cuts' rewards (length / 10, answer parity on top) and the ending's.
        assert 0.2 + 0.5 + 0.8 <= 3 * s.reward["anytime_score"] <= 0.2 + 0.5 + 0.8 + 3 * 0.05 + 1e-9
    scores = torch.tensor([s.reward["anytime_score"] for s in thoughts]).view(2, 3)  # [N, G]
    assert torch.allclose(torch.tensor([s.advantage for s in thoughts]), group_advantages(scores).view(-1))
    assert answers, "answers from one prefix differ in parity somewhere: some carry an advantage"
    for a in answers:
        rollout = next(s for s in thoughts if s.group == a.group and a.prompt.input_ids[:len(s.prompt.input_ids)]
                       == s.prompt.input_ids and a.prompt.input_ids[len(s.prompt.input_ids):][:a.cut]
                       == s.response_ids[:a.cut])  # the thought opens at 0: its first `cut` tokens
        prefix = a.prompt.input_ids[len(rollout.prompt.input_ids):]
        cut = BudgetParams(think_budget=a.cut) if a.cut < 8 else params
        # The prefix is the thought up to the cut, then the closing sequence the server forces there.
        state = replay(profile, cut, rollout.prompt.input_ids, prefix)
        assert state.num_thinking_tokens == a.cut and state.answer_forced and state.answer_start == len(prefix)
        assert a.advantage != 0 and a.prompt.vllm_ids is not None and sum(a.loss_mask) == len(a.response_ids)
    assert out.valid == [True, True]


def test_training_steps_on_thoughts_and_answers(tmp_path, tiny_model_dir, monkeypatch):
    import training.train as train_mod
    from tests.training.e2e_run import config

    data = make_arith_dataset(tmp_path / "data", n=8, seed=0)
    cfg = dataclasses.replace(config("hf", str(tiny_model_dir), str(data), str(tmp_path / "run")),
                              anytime_cuts="2,4", rollout_think_budget=8, dynamic_sampling=False, steps=1, save_every=0)
    trained = []
    real_prepare = train_mod.prepare
    monkeypatch.setattr(train_mod, "prepare", lambda kept, *a, **k: trained.extend(kept) or real_prepare(kept, *a, **k))
    result = train_mod.train(cfg)
    thoughts = [s for s in trained if s.cut is None]
    assert len(thoughts) == cfg.prompts_per_step * cfg.group_size  # every rollout, as its thought
    assert all(s.advantage != 0 for s in trained if s.cut is not None)  # answers only where they carry a gradient
    last = result["history"][-1]
    assert "reward/anytime_score" in last and "reward/cut4_accuracy" in last
    assert last["anytime/answers_trained"] == len(trained) - len(thoughts)


def test_every_rank_makes_the_same_answer_calls_and_rooms_are_per_prefix():
    """A tensor-parallel engine's ranks generate together: a rank with no cuts (or no prompts) still
    makes each answer call. Each answer is held to what max_new_tokens leaves after its own prefix."""
    from types import SimpleNamespace

    from training.rollout.anytime import Prefix, _within, sample_answers
    from training.rollout.samples import Completion

    calls = []

    class Engine:
        def generate(self, prompts, n, **kw):
            calls.append((len(prompts), n, kw["max_tokens"]))
            return [[Completion(p.input_ids, list(range(kw["max_tokens"])), "length") for _ in range(n)] for p in prompts]

    for answers, expected in ((2, [(0, 2, 1), (0, 1, 1)]), (1, [(0, 1, 1)])):
        calls.clear()
        cfg = SimpleNamespace(anytime_answers=answers, max_new_tokens=20, temperature=1.0, top_p=1.0)
        sample_answers(SimpleNamespace(cfg=cfg, engine=Engine(), rank=0, world=2), [], [], 0)
        assert calls == expected
    assert _within(Completion([], [5, 6, 7], "stop", [0.1, 0.2, 0.3]), 2) == Completion([], [5, 6], "length", [0.1, 0.2])

    from training.prompts import EncodedPrompt

    prompt = EncodedPrompt("q", [1, 2], [0, 0], {}, {}, text_ids=[1, 2])
    rollout = SimpleNamespace(prompt=prompt)
    found = [Prefix(0, [4], [9] * 4, BudgetParams(think_budget=4)), Prefix(0, [8], [9] * 12, BudgetParams(think_budget=8))]
    calls.clear()
    cfg = SimpleNamespace(anytime_answers=1, max_new_tokens=20, temperature=1.0, top_p=1.0)
    sample_answers(SimpleNamespace(cfg=cfg, engine=Engine(), rank=0, world=1), [rollout], found, 0)
    assert calls == [(2, 1, 16)]  # generated to the most any prefix leaves ...
    assert [len(p.answers[0].token_ids) for p in found] == [16, 8]  # ... then each held to its own room
