"""Drawn rollout budgets: parsing, draws, budget-aware advantages, metrics, config checks, and the
rollout plumbing (each sample forced at its own budget by the shared state machine, forced tokens masked)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from budget import BudgetParams, ThinkProfile, ThinkState
from training.rollout.budget_sampling import (BudgetDistribution, budget_advantages, budget_metrics, draw_budgets,
                                      parse_budget_choices)
from training.rollout.collect import Collected, RolloutContext, _roll
from training.config import ConfigError, GRPOConfig
from tasks.records import Record
from training.prompts import EncodedPrompt
from training.learner.grpo import group_advantages
from training.rollout.samples import Completion

OPEN, CLOSE, ANS, ANS_END, EOS, THINK, X = 1, 2, 3, 4, 0, 10, 20
PROFILE = ThinkProfile(family="glm4.1v", think_open_id=OPEN, think_close_id=CLOSE, closing_ids=(CLOSE, ANS),
                       eos_token_ids=frozenset({EOS}), answer_open_id=ANS, answer_close_id=ANS_END)


def test_parse_list_loguniform_and_errors():
    assert parse_budget_choices("") is None
    assert parse_budget_choices("0, 4,8") == BudgetDistribution(choices=(0, 4, 8))
    assert parse_budget_choices("loguniform:4-64") == BudgetDistribution(low=4, high=64)
    for bad in ("a,b", "loguniform:0-8", "loguniform:9-8", "loguniform:x", "-1,4"):
        with pytest.raises(ValueError, match="rollout_budget_choices"):
            parse_budget_choices(bad)


def test_draws_are_deterministic_per_key_and_cover_the_range():
    dist = BudgetDistribution(choices=(0, 4, 8, 16))
    a = draw_budgets(dist, 3, 8, "sample", "0-1-0-0")
    assert a == draw_budgets(dist, 3, 8, "sample", "0-1-0-0") != draw_budgets(dist, 3, 8, "sample", "0-2-0-0")
    for row in a:  # stratified: each budget exactly twice in a group of 8
        assert sorted(row) == [0, 0, 4, 4, 8, 8, 16, 16]
    per_group = draw_budgets(dist, 50, 4, "group", "k")
    assert all(len(set(row)) == 1 for row in per_group) and {r[0] for r in per_group} == {0, 4, 8, 16}
    logu = BudgetDistribution(low=4, high=64).draw(random.Random(0), 4000, stratified=False)
    assert min(logu) == 4 and max(logu) == 64
    # log-uniform: as many draws in [4, 8) as in [32, 64), within sampling noise
    low, high = sum(4 <= b < 8 for b in logu), sum(32 <= b < 64 for b in logu)
    assert abs(low - high) < 0.15 * len(logu) / 4


def test_budget_advantages_normalise_within_same_budget_subgroups():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])  # [N=2, G=4]
    budgets = [[4, 4, 32, 32], [4, 32, 4, 32]]
    adv = budget_advantages(rewards, budgets, scale=False)
    # group 0: budget 4 → (1, 0) centred ±0.5; budget 32 → both 1: no signal
    # group 1: budget 4 → (0, 0): 0; budget 32 → (1, 0): ±0.5
    assert adv.tolist() == [[0.5, -0.5, 0.0, 0.0], [0.0, 0.5, 0.0, -0.5]]
    scaled = budget_advantages(rewards, budgets, scale=True)
    assert torch.allclose(scaled[0, :2], torch.tensor([1.0, -1.0]), atol=1e-4)
    # plain GRPO would push the all-correct budget-32 pair of group 0 up against the budget-4 failure
    assert group_advantages(rewards, scale=False)[0, 2] > 0


def test_best_estimator_votes_once_per_same_budget_subgroup():
    rewards = torch.tensor([[1.0, 0.0, 0.9, 0.8]])  # [N=1, G=4]
    adv = budget_advantages(rewards, [[4, 4, 32, 32]], estimator="best")
    assert adv.tolist() == [[1.0, 0.0, 1.0, 0.0]]  # each budget's best, weight 1, whatever its reward gap


def test_one_budget_per_group_is_plain_grpo_and_singletons_get_zero():
    rewards = torch.tensor([[0.2, 0.9, 0.4], [1.0, 0.0, 0.5]])
    same = budget_advantages(rewards, [[8, 8, 8], [0, 0, 0]])
    assert torch.allclose(same, group_advantages(rewards))
    assert budget_advantages(rewards, [[1, 2, 3], [1, 2, 3]]).abs().sum() == 0


def test_budget_metrics():
    stats = [{"think_budget": b, "reward": {"reward": r, "accuracy": r}} for b, r in [(4, 0.0), (4, 1.0), (16, 1.0)]]
    m = budget_metrics(stats)
    assert m["rollout/think_budget_mean"] == pytest.approx(8.0)
    assert m["budget/4/reward"] == 0.5 and m["budget/16/accuracy"] == 1.0
    assert budget_metrics([{"think_budget": 8, "reward": {"reward": 1.0}}]) == {"rollout/think_budget_mean": 8.0}
    assert budget_metrics([{"think_budget": None, "reward": {"reward": 1.0}}]) == {}
    assert not any("share" in k for k in m)  # no form named, no form lines


def test_budget_metrics_per_form():
    """Share and accuracy of each thought form per budget; rows without a form (empty thought,
    another task) count in neither."""
    rows = [(8, "short", 1.0), (8, "short", 0.0), (8, "long", 0.0), (8, None, 0.0),
            (32, "long", 1.0), (32, "long", 1.0), (32, "short", 0.0), (32, "long", 0.0)]
    m = budget_metrics([{"think_budget": b, "form": f, "reward": {"reward": r, "accuracy": r}} for b, f, r in rows])
    assert m["budget/8/short_share"] == pytest.approx(2 / 3) and m["budget/8/long_share"] == pytest.approx(1 / 3)
    assert m["budget/8/short_accuracy"] == 0.5 and m["budget/8/long_accuracy"] == 0.0
    assert m["budget/32/long_share"] == 0.75 and m["budget/32/long_accuracy"] == pytest.approx(2 / 3)
    assert m["budget/32/short_accuracy"] == 0.0


def test_config_checks_say_what_to_change():
    GRPOConfig(rollout_budget_choices="0,4,8", rollout_budget_per="sample", budget_aware_advantages=True)
    with pytest.raises(ConfigError, match="max_new_tokens to at least 275"):
        GRPOConfig(rollout_budget_choices="0,256", max_new_tokens=256)
    with pytest.raises(ConfigError, match="set rollout_budget_choices"):
        GRPOConfig(budget_aware_advantages=True)
    with pytest.raises(ConfigError, match="forced_answering"):
        GRPOConfig(rollout_budget_choices="4,8", forced_answering=False)
    with pytest.raises(ValueError, match="'group' or 'sample'"):
        GRPOConfig(rollout_budget_per="prompt")
    with pytest.raises(ConfigError, match="loguniform"):
        GRPOConfig(rollout_budget_choices="loguniform:0-8")


class StateMachineEngine:
    """A fake engine whose 'policy' thinks forever; the shared budget state machine forces the close at
    each request's own BudgetParams, as the vLLM / HF processors do. Records what it was given."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, n, *, temperature, top_p, max_tokens, budget, seeds):
        self.calls.append((len(prompts), n, budget, seeds))
        return [[self._one(p, b) for _ in range(n)] for p, b in zip(prompts, budget)]

    def _one(self, prompt, params):
        state, ids, tail = ThinkState(PROFILE, params, prompt.input_ids), [], [X, ANS_END, EOS]
        while not ids or ids[-1] != EOS:
            tok = state.forced_token()
            if tok is None:  # the policy's own choice: open, think on, and answer once the answer is open
                tok = tail.pop(0) if ANS in ids else (THINK if ids else OPEN)
            ids.append(tok)
            state.advance(tok)
        return Completion(prompt.input_ids, ids, "stop")


@pytest.mark.parametrize("per", ["group", "sample"])
def test_roll_forces_each_sample_at_its_drawn_budget_and_masks_it(per):
    cfg = GRPOConfig(rollout_budget_choices="0,4,8,16", rollout_budget_per=per, budget_aware_advantages=True,
                     group_size=4, max_new_tokens=64, answer_reserve=8, train_data="x")
    prompt = EncodedPrompt(text="q", input_ids=[7, 8], mm_token_type_ids=[0, 0], vllm_mm_data={}, tensors={})
    records = [Record(f"r{i}", "t", "d", [], 1) for i in range(3)]
    # reward: 1 for a long thought, so budget-blind advantages would favour long budgets
    reward_fns = {"d": lambda resp, ans: {"reward": float(resp.num_thinking_tokens >= 8),
                                          "accuracy": float(resp.num_thinking_tokens >= 8)}}
    tokenizer = SimpleNamespace(decode=lambda ids, skip_special_tokens=False: " ".join(map(str, ids)))
    engine = StateMachineEngine()
    ctx = RolloutContext(cfg, engine, lambda r, budget=None: prompt, PROFILE, tokenizer, reward_fns, BudgetParams(think_budget=48),
                         48, 0, 1, torch.device("cpu"), parse_budget_choices(cfg.rollout_budget_choices))
    out = Collected()
    _roll(ctx, 1, 0, records, out)
    assert len(out.samples) == 12
    prompts, n, budgets, _ = engine.calls[0]
    assert (prompts, n) == ((3, 4) if per == "group" else (12, 1))
    assert all(isinstance(b, BudgetParams) for b in budgets)
    for s in out.samples:
        assert s.think_budget in (0, 4, 8, 16)
        assert s.num_thinking_tokens == s.think_budget and s.answer_forced
        close = s.response_ids.index(CLOSE)
        assert close == 1 + s.think_budget  # <think> + budget tokens, then the forced close
        assert s.loss_mask[close:close + 2] == [0, 0] and sum(s.loss_mask) == len(s.response_ids) - 2
    # every sample of a same-budget subgroup has the same reward → no signal inside it
    assert all(s.advantage == 0.0 for s in out.samples)
    if per == "sample":
        for g in range(3):
            assert sorted(s.think_budget for s in out.samples if s.group == g) == [0, 4, 8, 16]


def test_example_yaml_loads():
    from pathlib import Path

    cfg = GRPOConfig.from_yaml(Path(__file__).parents[2] / "examples" / "grpo_budgets.yaml")
    assert cfg.budget_aware_advantages and parse_budget_choices(cfg.rollout_budget_choices).max_budget == 16


@pytest.mark.parametrize("per", ["group", "sample"])
def test_each_sample_is_prompted_with_the_budget_it_runs_under(per):
    """With a budget hint the encoder is asked for the record under each sample's enforced budget,
    and that prompt is the one generated from and trained on; a forced close costs the penalty."""
    cfg = GRPOConfig(rollout_budget_choices="0,4,8,16", rollout_budget_per=per, budget_aware_advantages=True,
                     group_size=4, max_new_tokens=64, answer_reserve=8, train_data="x",
                     budget_hint="Think for at most {budget} tokens.", forced_close_penalty=0.25)
    records = [Record(f"r{i}", "t", "d", [], 1) for i in range(2)]
    asked = []

    def encode(record, budget=None):
        asked.append((record.id, budget))
        return EncodedPrompt(text=f"{record.id}@{budget}", input_ids=[7, 8], mm_token_type_ids=[0, 0],
                             vllm_mm_data={}, tensors={})

    reward_fns = {"d": lambda resp, ans: {"reward": 1.0, "accuracy": 1.0}}
    tokenizer = SimpleNamespace(decode=lambda ids, skip_special_tokens=False: " ".join(map(str, ids)))
    ctx = RolloutContext(cfg, StateMachineEngine(), encode, PROFILE, tokenizer, reward_fns, BudgetParams(think_budget=48),
                         48, 0, 1, torch.device("cpu"), parse_budget_choices(cfg.rollout_budget_choices))
    out = Collected()
    _roll(ctx, 1, 0, records, out)
    for s in out.samples:
        assert s.prompt.text == f"r{s.group}@{s.think_budget}"
        assert s.answer_forced and s.reward["reward"] == 0.75 and s.reward["forced_close"] == -0.25
    assert {b for _, b in asked} <= {0, 4, 8, 16}


def test_prompt_encoder_shows_the_budget_in_the_chat_template(tiny_model_dir):
    from transformers import AutoProcessor

    from budget.hint import BudgetHint
    from training.prompts import PromptEncoder

    encode = PromptEncoder(AutoProcessor.from_pretrained(tiny_model_dir), BudgetHint("At most {budget} tokens."))
    record = Record("r0", "t", "d", [{"role": "user", "content": "Add up: a3 b5."}], 8)
    eight, sixteen = encode(record, 8), encode(record, 16)
    assert "Add up: a3 b5.\nAt most 8 tokens." in eight.text and "At most 16 tokens." in sixteen.text
    assert encode(record, 8) is eight  # cached per (record, budget)
    plain = PromptEncoder(AutoProcessor.from_pretrained(tiny_model_dir))
    assert plain(record, 8) is plain(record, 16) and "At most" not in plain(record).text


def test_budget_length_terms():
    """LCPO-max (a cut thought costs the penalty) and LCPO-Exact (|thinking - budget| x coef)."""
    from training.rollout.collect import with_budget_terms
    from training.rollout.samples import Outcome, Sample

    cfg = GRPOConfig(train_data="x", rollout_budget_choices="8,32", budget_length_coef=0.02, forced_close_penalty=0.25)
    base = {"reward": 1.0, "accuracy": 1.0}

    def sample(think, budget, outcome=Outcome.STOPPED):
        return Sample(group=0, prompt=None, response_ids=[], loss_mask=[], num_thinking_tokens=think,
                      outcome=outcome, think_budget=budget)

    long32, short32 = with_budget_terms(base, cfg, sample(18, 32)), with_budget_terms(base, cfg, sample(9, 32))
    assert long32 == {"reward": pytest.approx(1 - 0.28), "accuracy": 1.0, "length_miss": pytest.approx(-0.28)}
    assert short32["reward"] == pytest.approx(1 - 0.46) and short32["reward"] < long32["reward"]  # a large budget rewards the longer thought
    cut = with_budget_terms(base, cfg, sample(8, 8, Outcome.FORCED))
    assert cut == {"reward": 0.75, "accuracy": 1.0, "forced_close": -0.25, "length_miss": 0.0}
    assert with_budget_terms(base, GRPOConfig(train_data="x"), sample(3, 32)) == base  # both off
    assert base == {"reward": 1.0, "accuracy": 1.0}  # not mutated
    with pytest.raises(ConfigError, match="budget_length_coef needs a budget"):
        GRPOConfig(train_data="x", budget_length_coef=0.1, rollout_think_budget=None)
    with pytest.raises(ConfigError, match="budget_length_coef must be >= 0"):
        GRPOConfig(train_data="x", budget_length_coef=-1)
    # passed only: a wrong answer keeps its reward whatever its length (no tie-break among wrong answers)
    only = GRPOConfig(train_data="x", rollout_budget_choices="8,32", budget_length_coef=0.02, budget_length_passed_only=True)
    wrong = {"reward": 0.0, "accuracy": 0.0}
    assert with_budget_terms(wrong, only, sample(18, 32)) == wrong
    assert with_budget_terms(base, only, sample(18, 32))["length_miss"] == pytest.approx(-0.28)
    with pytest.raises(ConfigError, match="budget_length_passed_only limits budget_length_coef"):
        GRPOConfig(train_data="x", budget_length_passed_only=True)


def test_hint_and_penalty_config_errors():
    with pytest.raises(ConfigError, match="budget_hint: .*exactly one"):
        GRPOConfig(train_data="x", budget_hint="no placeholder")
    with pytest.raises(ConfigError, match="forced_close_penalty"):
        GRPOConfig(train_data="x", forced_close_penalty=-1)
    assert GRPOConfig(train_data="x", budget_hint="≤ {budget}").hint().text(4) == "≤ 4"


def test_budget_balance_gives_every_budget_the_same_mass():
    from training.rollout.budget_sampling import balance_budgets, balance_weights

    # Budget 8 kept 3 mixed groups' worth of |advantage| (6.0), budget 32 one group's (1.5): equal say is
    # the mean mass 3.75 each, i.e. 8 x 0.625 and 32 x 2.5; a budget with no signal keeps weight 1.
    assert balance_weights({8: 6.0, 32: 1.5, 16: 0.0}) == {8: 0.625, 32: 2.5, 16: 1.0}
    assert balance_weights({8: 8.0, 32: 0.5}) == {8: pytest.approx(4.25 / 8), 32: 4.0}  # capped at 4x
    assert balance_weights({8: -6.0, 32: 1.5}) == {8: 0.625, 32: 2.5}  # a signed push counts by its size
    assert balance_weights({8: 0.0}) == {8: 1.0}
    samples = [SimpleNamespace(think_budget=b, advantage=a, num_thinking_tokens=9) for b, a in
               [(8, 1.0), (8, -1.0), (8, 2.0), (8, -2.0), (32, 0.5), (32, -0.5)]]
    weights = balance_budgets(samples, world=1, mode="mass")
    assert weights == {8: pytest.approx(3.5 / 6), 32: 3.5}
    assert [s.advantage for s in samples] == pytest.approx([3.5 / 6, -3.5 / 6, 7 / 6, -7 / 6, 1.75, -1.75])
    mass = {b: sum(abs(s.advantage) for s in samples if s.think_budget == b) for b in (8, 32)}
    assert mass[8] == pytest.approx(mass[32])  # each budget now carries 3.5
    with pytest.raises(ConfigError, match="budget_balance weighs drawn budgets"):
        GRPOConfig(train_data="x", budget_balance="mass")
    with pytest.raises(ConfigError, match="budget_balance must be one of"):
        GRPOConfig(train_data="x", rollout_budget_choices="8,32", budget_balance=True)
    assert GRPOConfig(train_data="x", rollout_budget_choices="8,32", budget_balance="length").budget_balance == "length"


def test_budget_balance_length_equalises_the_push_on_thinking_length():
    from training.rollout.budget_sampling import balance_budgets

    # Budget 12: the short thought (6 tokens) wins, the long one (16) loses: push sum A x (len - mean)
    # = 1 x (6 - 11) + (-1) x (16 - 11) = -10. Budget 32: the long one wins by a little: 0.5 x 5 +
    # (-0.5) x (-5) = +5. Equal pushes: mean size 7.5, so 12 x 0.75 and 32 x 1.5 (pushes -7.5 and +7.5).
    samples = [SimpleNamespace(think_budget=b, advantage=a, num_thinking_tokens=n) for b, a, n in
               [(12, 1.0, 6), (12, -1.0, 16), (32, -0.5, 6), (32, 0.5, 16)]]
    weights = balance_budgets(samples, world=1, mode="length")
    assert weights == {12: pytest.approx(0.75), 32: pytest.approx(1.5)}
    push = {b: sum(s.advantage * (s.num_thinking_tokens - 11) for s in samples if s.think_budget == b) for b in (12, 32)}
    assert push[12] == pytest.approx(-push[32]) == pytest.approx(-7.5)  # cancel on what they share
    # Equal lengths in a budget: no length push, weight 1, advantages untouched.
    flat = [SimpleNamespace(think_budget=8, advantage=a, num_thinking_tokens=8) for a in (1.0, -1.0)]
    assert balance_budgets(flat, world=1, mode="length") == {8: 1.0} and [s.advantage for s in flat] == [1.0, -1.0]
