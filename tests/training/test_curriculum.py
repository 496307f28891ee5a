"""RLCS tiers and weights, online re-tiering, dynamic sampling's oversampling EMA, exact state round trip."""

from __future__ import annotations

import math

import pytest

from training.curriculum import Curriculum, DynamicSampling, tier_of
from tasks.records import Record


def records(tiers: list[int | None]) -> list[Record]:
    return [Record(id=f"r{i}", task="t", domain="counting", messages=[], answer=1, difficulty=d)
            for i, d in enumerate(tiers)]


@pytest.mark.parametrize(("rate", "tier"), [(1.0, 0), (0.7, 0), (0.66, 1), (0.5, 1), (0.34, 1), (0.33, 2), (0.0, 2)])
def test_tier_of(rate, tier):
    assert tier_of(rate, 3) == tier


def test_initial_tiers_and_size_weighted_weights():
    cur = Curriculum(records([0, 1, 2, None, 7]), num_tiers=3, min_weight=0.05)
    assert cur.tiers == {"r0": 0, "r1": 1, "r2": 2, "r3": 1, "r4": 2}  # unlabeled → middle, clamped
    # sizes 1, 2, 2 with equal informativeness: floor + 0.85 * size / 5
    assert cur.weights() == pytest.approx([0.05 + 0.85 / 5, 0.05 + 0.85 * 2 / 5, 0.05 + 0.85 * 2 / 5])


def test_weights_move_away_from_uninformative_tier():
    cur = Curriculum(records([0, 0, 1, 1, 2, 2]), num_tiers=3, ema=0.7, min_weight=0.05, window=1)
    # Tier 0: both groups all-solved (no signal). Tier 1: one mixed group. Tier 2: not seen.
    cur.update([("r0", [True] * 4), ("r1", [True] * 4), ("r2", [True, False, False, True])])
    assert cur.informative == pytest.approx([0.7, 1.0, 1.0])  # 0.7 * 1 + 0.3 * 0
    assert cur.tier_sizes() == [2, 2, 2]  # r0, r1 stay easy; r2 (pass rate 0.5) stays in the middle
    w = cur.weights()  # mass = size x informative share: 1.4, 2, 2
    assert w[0] == pytest.approx(0.05 + 0.85 * 1.4 / 5.4)
    assert w[1] == w[2] == pytest.approx(0.05 + 0.85 * 2.0 / 5.4)
    assert sum(w) == pytest.approx(1.0)


def test_small_tier_does_not_take_the_batch():
    # 2 half-solved prompts in tier 0 next to 98 fresh ones: tier 0 gets about its share of prompts.
    cur = Curriculum(records([0] * 2 + [1] * 98), num_tiers=3, min_weight=0.05)
    assert cur.weights()[0] == pytest.approx(0.05 + 0.9 * 2 / 100)


def test_online_pass_rate_retiers_prompts():
    cur = Curriculum(records([1, 1]), num_tiers=3, window=2)
    cur.update([("r0", [True] * 4), ("r1", [False] * 4)])
    assert cur.tiers == {"r0": 0, "r1": 2}
    cur.update([("r0", [False] * 4)])  # window of 2: mean(1.0, 0.0) = 0.5 → middle
    assert cur.tiers["r0"] == 1
    cur.update([("r0", [False] * 4)])  # oldest result falls out: mean(0, 0) → hardest
    assert cur.tiers["r0"] == 2


def test_sample_distinct_and_follows_weights():
    cur = Curriculum(records([0] * 10 + [2] * 10), num_tiers=3, min_weight=0.0, seed=1)
    cur.informative = [1.0, 1.0, 0.0]  # tier 2 never informative, no floor → never drawn
    for _ in range(5):
        got = cur.sample(6)
        assert len({r.id for r in got}) == 6
        assert all(cur.tiers[r.id] == 0 for r in got)
    assert len(cur.sample(50)) == 20  # asks beyond the data: everything once, weighted tiers first


def test_disabled_curriculum_is_uniform_over_records():
    cur = Curriculum(records([0] * 3 + [2] * 1), num_tiers=3, enabled=False)
    assert cur.weights() == pytest.approx([0.75, 0.0, 0.25])


def test_state_round_trip_reproduces_draws():
    a = Curriculum(records([0, 1, 2] * 5), seed=3)
    a.update([("r0", [True, False]), ("r4", [False, False])])
    b = Curriculum(records([0, 1, 2] * 5), seed=99)
    b.load_state_dict(a.state_dict())
    assert [r.id for r in a.sample(5)] == [r.id for r in b.sample(5)]
    assert a.weights() == b.weights()


def test_dynamic_sampling_expansion_ema():
    ds = DynamicSampling(ema=0.9, max_factor=3.0)
    assert ds.num_to_draw(8) == 8
    ds.update(0.5)  # ratio 1 / (1 - 0.5) = 2 → 0.9 * 1 + 0.1 * 2
    assert ds.expansion == pytest.approx(1.1)
    assert ds.num_to_draw(8) == math.ceil(8 * 1.1)
    ds.update(1.0)  # every group invalid: the ratio is capped
    assert ds.expansion == pytest.approx(0.9 * 1.1 + 0.1 * 3.0)
    assert DynamicSampling(enabled=False).num_to_draw(8) == 8


def test_domain_mix_weights_draws_within_a_tier():
    from training.config import ConfigError, GRPOConfig

    recs = [Record(id=f"a{i}", task="t", domain="counting", messages=[], answer=1) for i in range(50)]
    recs += [Record(id=f"b{i}", task="t", domain="exact", messages=[], answer=1) for i in range(50)]
    mix = GRPOConfig(domain_mix="counting=4, exact=1").domain_weights()
    assert mix == {"counting": 4.0, "exact": 1.0}
    counts = {"counting": 0, "exact": 0}
    for seed in range(40):
        for r in Curriculum(recs, 3, False, seed=seed, domain_weights=mix).sample(5):
            counts[r.domain] += 1
    assert counts["counting"] > 2.5 * counts["exact"]  # 4:1 expected on the first draws of a fresh pool
    only = Curriculum(recs, 3, False, seed=0, domain_weights={"counting": 0.0}).sample(10)
    assert {r.domain for r in only} == {"exact"}
    with pytest.raises(ConfigError, match="expected domain=weight"):
        GRPOConfig(domain_mix="counting:2")
