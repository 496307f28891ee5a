"""`form_exploration`: some samples of each group start their thought in a given form, through the
real tokenizer, chat template and HF rollout engine on the tiny model."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import AutoProcessor

from budget import build_profile
from budget.state import Phase, prompt_phase
from scoring.rewards import build_reward_fns
from tasks.records import Record, load_records
from tasks.running_sums import make_arith_dataset, worked_thought
from training.config import ConfigError, GRPOConfig
from training.learner.policy import load_policy
from training.prompts import PromptEncoder
from training.rollout.budget_sampling import parse_budget_choices
from training.rollout.collect import Collected, RolloutContext, _roll
from training.rollout.form_exploration import forced_slots, openings
from training.rollout.samples import HFEngine, rollout_params


def test_forced_slots_cycle_the_forms_at_the_end_of_the_group():
    assert forced_slots(8, 0.0, 2) == [None] * 8
    assert forced_slots(8, 0.5, 2) == [None] * 4 + [0, 1, 0, 1]
    assert forced_slots(8, 0.1, 2) == [None] * 6 + [0, 1]  # at least one per form
    assert forced_slots(3, 0.9, 2) == [None, 0, 1]  # one free sample always
    assert forced_slots(8, 0.5, 0) == [None] * 8


def test_config_refuses_what_it_cannot_honour():
    with pytest.raises(ConfigError, match="form_exploration is a share"):
        GRPOConfig(train_data="x", form_exploration=1.0)
    with pytest.raises(ConfigError, match="group_size must be >= 3"):
        GRPOConfig(train_data="x", form_exploration=0.25, group_size=2)
    assert GRPOConfig(train_data="x", form_exploration=0.25).form_exploration == 0.25


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return AutoProcessor.from_pretrained(tiny_model_dir)


def test_openings_are_the_forms_first_differing_tokens(tmp_path, processor):
    tok = processor.tokenizer
    record = load_records(make_arith_dataset(tmp_path, n=1, seed=0))[0]
    got = {o.form: o for o in openings(record, tok)}
    assert set(got) == {"long", "short"}
    for form, o in got.items():
        thought = worked_thought(record, short=form == "short")
        assert thought.startswith(o.text) and o.num_tokens == len(tok.encode(o.text, add_special_tokens=False))
    a, b = (tok.encode(got[f].text, add_special_tokens=False) for f in ("long", "short"))
    assert len(a) == len(b) and a[:-1] == b[:-1] and a[-1] != b[-1]  # same up to the token that decides
    assert "=" in got["long"].text and "=" not in got["short"].text
    assert openings(Record("s", "synthetic", "d", [{"role": "user", "content": "hi"}], 1), tok) == []  # no forms


def test_opened_samples_start_in_their_form_and_count_the_opening_as_thinking(tmp_path, tiny_model_dir, processor):
    cfg = GRPOConfig(model=str(tiny_model_dir), train_data="x", rollout_budget_choices="8,16", group_size=4,
                     form_exploration=0.5, max_new_tokens=40, answer_reserve=8, budget_hint="Think for at most {budget} tokens.")
    tok = processor.tokenizer
    policy = load_policy(str(tiny_model_dir))
    profile = build_profile(tok, model_type=policy.config.model_type)
    engine = HFEngine(policy, profile, tok.pad_token_id, [tok.convert_tokens_to_ids("<|endoftext|>")])
    records = load_records(make_arith_dataset(tmp_path, n=2, seed=0))
    encode = PromptEncoder(processor, cfg.hint())
    ctx = RolloutContext(cfg, engine, encode, profile, tok, build_reward_fns(), rollout_params(16, cfg, profile), 16,
                         0, 1, torch.device("cpu"), parse_budget_choices(cfg.rollout_budget_choices))
    out = Collected()
    torch.manual_seed(0)
    _roll(ctx, 1, 0, records, out)
    assert [s.opened for s in out.samples] == [None, None, "long", "short"] * 2
    for s in out.samples:
        record = records[s.group]
        plain = encode(record, s.think_budget)
        assert f"at most {s.think_budget} tokens" in s.prompt.text  # the hint shows the sample's own budget
        if s.opened is None:
            assert s.prompt.input_ids == plain.input_ids
            continue
        o = next(o for o in openings(record, tok) if o.form == s.opened)
        # GLM-4.1V's template leaves `<think>` to the model: the opening comes after it, inside the thought
        assert prompt_phase(profile, plain.input_ids) != Phase.THINKING
        assert s.prompt.input_ids == plain.input_ids + [profile.think_open_id] + tok.encode(o.text, add_special_tokens=False)
        assert prompt_phase(profile, s.prompt.input_ids) == Phase.THINKING
        assert s.num_thinking_tokens <= s.think_budget  # the opening counted against the budget
        if s.answer_forced:
            assert s.num_thinking_tokens == s.think_budget
        if s.opened == "long":
            assert s.form == "long"  # classified on opening + continuation


def test_training_keeps_opened_samples_out_of_the_update(tmp_path, tiny_model_dir, monkeypatch):
    """A GRPO step rolls out opened samples (logged by form, in every group) but updates on the free
    ones only: the opened ones are the baseline their advantages were computed against."""
    import training.train as train_mod
    from tests.training.e2e_run import config

    data = make_arith_dataset(tmp_path / "data", n=8, seed=0)
    cfg = dataclasses.replace(config("hf", str(tiny_model_dir), str(data), str(tmp_path / "run")),
                              rollout_budget_choices="8,16", form_exploration=0.5, dynamic_sampling=False, steps=1,
                              save_every=0)
    trained, rolled = [], []
    real_prepare = train_mod.prepare
    monkeypatch.setattr(train_mod, "prepare", lambda kept, *a, **k: trained.extend(kept) or real_prepare(kept, *a, **k))
    train_mod.train(cfg, on_step=lambda step, samples: rolled.extend(samples))
    assert sum(s.opened is not None for s in rolled) == len(rolled) // 2  # half of each group opened
    assert trained and all(s.opened is None for s in trained)
