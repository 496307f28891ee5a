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
from training.learner.grpo import group_advantages
from training.learner.policy import load_policy
from training.prompts import PromptEncoder
from training.rollout.budget_sampling import parse_budget_choices
from training.rollout.collect import Collected, RolloutContext, _roll
from training.rollout.form_exploration import forced_slots, form_choices, openings
from training.rollout.samples import HFEngine, Outcome, Sample, rollout_params


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
    with pytest.raises(ConfigError, match="form_credit credits the form choice from opened samples"):
        GRPOConfig(train_data="x", form_credit=1.0)
    with pytest.raises(ConfigError, match="form_credit must be >= 0"):
        GRPOConfig(train_data="x", form_exploration=0.5, form_credit=-1.0)
    # One opened sample per form would be alone in its (budget, form) subgroup: no content training
    with pytest.raises(ConfigError, match="at least 2 opened samples per form"):
        GRPOConfig(train_data="x", form_exploration=0.25, form_credit=1.0, group_size=8)
    assert GRPOConfig(train_data="x", form_exploration=0.25, form_credit=1.0, group_size=16).form_credit == 1.0
    with pytest.raises(ConfigError, match="set rollout_budget_per 'group'"):
        GRPOConfig(train_data="x", form_exploration=0.5, form_credit=1.0, rollout_budget_choices="8,32",
                   rollout_budget_per="sample")


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


def test_form_choices_credit_each_form_with_its_value_under_the_budget(tmp_path, tiny_model_dir, processor):
    """Per (group, budget): one one-token sample per form where the forms' mean rewards differ, the
    token where they part after the prompt + `<think>` + their shared tokens, advantage
    credit x (form value - mean over forms); none where the forms tie or one form has no sample."""
    tok = processor.tokenizer
    profile = build_profile(tok, model_type=load_policy(str(tiny_model_dir)).config.model_type)
    encode = PromptEncoder(processor, GRPOConfig(train_data="x", budget_hint="At most {budget}.").hint())
    records = load_records(make_arith_dataset(tmp_path, n=2, seed=0))

    def sample(group: int, budget: int, reward: float, form: str | None = None, opened: str | None = None) -> Sample:
        return Sample(group=group, prompt=encode(records[group - 10], budget), response_ids=[1], loss_mask=[1],
                      num_thinking_tokens=3, outcome=Outcome.STOPPED, think_budget=budget, form=form, opened=opened,
                      reward={"reward": reward})

    samples = [
        # group 10, budget 12: long (opened 0, free 0) = 0.0, short (opened 1, free 0.5) = 0.75
        sample(10, 12, 0.0, opened="long"), sample(10, 12, 0.0, form="long"),
        sample(10, 12, 1.0, opened="short", form="long"), sample(10, 12, 0.5, form="short"),
        sample(10, 12, 1.0, form=None),  # no form to its thought: not counted
        sample(10, 32, 1.0, opened="long"), sample(10, 32, 1.0, opened="short"),  # a tie: no choice
        sample(11, 32, 1.0, opened="long"), sample(11, 32, 0.0, form="long"),  # no short sample: no choice
    ]
    got = form_choices(encode, records, 10, samples, 2.0, profile, tok)
    assert [(s.group, s.think_budget, s.form) for s in got] == [(10, 12, "long"), (10, 12, "short")]
    assert [s.advantage for s in got] == pytest.approx([2.0 * -0.375, 2.0 * 0.375])
    plain = encode(records[0], 12).input_ids
    ids = {o.form: tok.encode(o.text, add_special_tokens=False) for o in openings(records[0], tok)}
    for s in got:
        assert s.form_choice and s.loss_mask == [1] and s.response_ids == ids[s.form][-1:]
        assert s.prompt.input_ids == plain + [profile.think_open_id] + ids[s.form][:-1]  # shared context
        assert "At most 12." in s.prompt.text  # the hint of the subgroup's budget
    assert got[0].prompt.input_ids == got[1].prompt.input_ids and got[0].response_ids != got[1].response_ids
    # The engine never gave a log-prob for a choice's token (it was prompt to it): the batch says so
    from training.learner.policy import collate

    batch = collate([got[0], dataclasses.replace(samples[1], engine_logprobs=[-0.5])], tok.pad_token_id)
    assert batch.engine_mask.sum(dim=1).tolist() == [0.0, 1.0]


def test_training_with_form_credit_updates_on_form_choices_too(tmp_path, tiny_model_dir, monkeypatch):
    """`form_credit`: the update gets every sample, each compared with its own form under its budget,
    and one-token form choices; rollout statistics count rollouts only, and the number of choices is
    logged."""
    import training.train as train_mod
    from tests.training.e2e_run import config

    data = make_arith_dataset(tmp_path / "data", n=8, seed=0)
    cfg = dataclasses.replace(config("hf", str(tiny_model_dir), str(data), str(tmp_path / "run")),
                              rollout_budget_choices="8,16", form_exploration=0.7, form_credit=1.0,
                              dynamic_sampling=False, steps=1, save_every=0, group_size=6)
    trained = []
    real_prepare = train_mod.prepare
    monkeypatch.setattr(train_mod, "prepare", lambda kept, *a, **k: trained.extend(kept) or real_prepare(kept, *a, **k))
    # A reward that differs from sample to sample (the random model's thoughts differ in length)
    by_length = {d: (lambda response, answer: {"reward": len(response.thinking) % 5 / 4, "accuracy": 0.0})
                 for d in build_reward_fns()}
    history = train_mod.train(cfg, reward_fns=by_length)["history"]
    choices = [s for s in trained if s.form_choice]
    assert choices, "no subgroup's forms differed: the test's rewards give no signal"
    # Opened samples train their form's content: advantages against their own form's samples only
    assert any(s.opened for s in trained)
    rollouts = [s for s in trained if not s.form_choice]
    assert len(rollouts) == cfg.prompts_per_step * cfg.group_size  # every sample, opened ones included
    by_key: dict = {}
    for s in rollouts:
        by_key.setdefault((s.group, s.think_budget, s.opened or s.form), []).append(s)
    assert {form is None for _, _, form in by_key} == {True, False}  # both kinds are in the step
    for (group, budget, form), members in by_key.items():
        if form is not None:  # centred within each (group, budget, form)
            assert abs(sum(s.advantage for s in members)) < 1e-4
            continue
        # no form (the random model's free thoughts): against the whole (group, budget) subgroup
        subgroup = [s for s in rollouts if (s.group, s.think_budget) == (group, budget)]
        want = group_advantages(torch.tensor([[s.reward["reward"] for s in subgroup]]))[0].tolist()
        got = {id(s): a for s, a in zip(subgroup, want)}
        assert all(s.advantage == pytest.approx(got[id(s)], abs=1e-5) for s in members)
    assert history[0]["form/choices_trained"] == len(choices)
    assert all(len(s.response_ids) == 1 and s.advantage != 0 for s in choices)
    assert {s.form for s in choices} <= {"long", "short"} and len(choices) % 2 == 0


def test_form_credit_advantages_and_signal_per_group(tmp_path, tiny_model_dir, processor):
    """`collect._form_credit` on one round: advantages within each (budget, form); a formless sample
    against its whole budget subgroup; a group whose forms differ carries a signal even when every
    sample equals the rest of its form (all advantages 0: only the choices move); a tied group none."""
    from training.rollout.collect import _form_credit

    tok = processor.tokenizer
    cfg = GRPOConfig(train_data="x", form_exploration=0.5, form_credit=1.0, group_size=8, rollout_think_budget=12,
                     budget_hint="At most {budget}.")
    profile = build_profile(tok, model_type=load_policy(str(tiny_model_dir)).config.model_type)
    encode = PromptEncoder(processor, cfg.hint())
    ctx = RolloutContext(cfg, None, encode, profile, tok, {}, rollout_params(12, cfg, profile), 12, 0, 1,
                         torch.device("cpu"))
    records = load_records(make_arith_dataset(tmp_path, n=2, seed=0))
    rows = [  # (opened, form, reward) per sample
        [(None, "long", 0.0), (None, "long", 0.0), (None, "short", 1.0), (None, None, 0.0),
         ("long", "long", 0.0), ("short", "short", 1.0), ("long", "long", 0.0), ("short", "short", 1.0)],
        [(None, "long", 1.0)] * 4 + [("long", "long", 1.0), ("short", "short", 1.0)] * 2,
    ]
    samples = [Sample(group=g, prompt=encode(records[g], 12), response_ids=[1], loss_mask=[1], num_thinking_tokens=3,
                      outcome=Outcome.STOPPED, think_budget=12, opened=o, form=f, reward={"reward": r, "accuracy": r})
               for g, row in enumerate(rows) for o, f, r in row]
    passes = [s.reward["accuracy"] >= cfg.pass_threshold for s in samples]
    out, valid = _form_credit(ctx, samples, records, 0, [[12] * 8, [12] * 8], passes)
    assert valid == [True, False]
    rollouts, choices = out[:16], out[16:]
    assert [(c.group, c.form, c.advantage) for c in choices] == [(0, "long", -0.5), (0, "short", 0.5)]
    whole = group_advantages(torch.tensor([[r for _, _, r in rows[0]]]))[0]  # [G]
    assert rollouts[3].advantage == pytest.approx(whole[3].item())  # the formless one: vs its whole subgroup
    assert rollouts[3].advantage < 0
    assert all(s.advantage == 0 for i, s in enumerate(rollouts) if i != 3)  # each form's samples agree
