"""Reinforcement Learning with Curriculum Sampling (RLCS) and dynamic sampling, from the report.

Tiers: 0 = easiest .. K-1 = hardest, from a pass rate p as tier = floor((1 - p) * K). Offline tiers
come from `thinkcap train --label-difficulty` (pass@k of a model); once a prompt has been rolled
out, its online pass rate over the last `window` groups decides its tier instead.

Tier weights: a group where all samples pass or all fail has zero advantage everywhere, so it
teaches nothing. Each tier keeps an EMA of its share of informative groups, and a tier's weight is
its expected number of informative prompts (size x that share), plus a floor: sampling drifts away
from tiers the model has already solved or cannot yet solve at all. Weighing by size matters: a
small tier of half-solved prompts must not take most of every batch, or the policy just memorises
those few prompts (we saw exactly that on the synthetic task before weighing by size).

Dynamic sampling: groups with zero reward variance are dropped; to still fill the batch we draw
more prompts than needed, by an EMA of the expansion ratio 1 / (1 - invalid_rate).
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from tasks.records import Record


def tier_of(pass_rate: float, num_tiers: int) -> int:
    return min(num_tiers - 1, int((1.0 - pass_rate) * num_tiers))


class Curriculum:
    def __init__(self, records: list[Record], num_tiers: int = 3, enabled: bool = True, ema: float = 0.7,
                 min_weight: float = 0.05, window: int = 4, seed: int = 0, domain_weights: dict[str, float] | None = None):
        """domain_weights: within a tier, a record is drawn in proportion to its domain's weight
        (domains not listed weigh 1); None = uniform."""
        self.records = {r.id: r for r in records}
        self.domain_weights = domain_weights
        self.num_tiers, self.enabled, self.ema, self.min_weight = num_tiers, enabled, ema, min_weight
        self.window = window
        middle = num_tiers // 2  # unlabeled prompts start in the middle tier
        self.tiers = {r.id: middle if r.difficulty is None else min(max(int(r.difficulty), 0), num_tiers - 1)
                      for r in records}
        self.history: dict[str, deque[float]] = {}
        self.informative = [1.0] * num_tiers  # optimistic start: every tier gets tried
        self.rng = random.Random(seed)

    # ---- sampling ------------------------------------------------------------------------------
    def tier_sizes(self) -> list[int]:
        sizes = [0] * self.num_tiers
        for tier in self.tiers.values():
            sizes[tier] += 1
        return sizes

    def weights(self) -> list[float]:
        """Sampling probability of each tier: a floor, plus the rest in proportion to
        size x informative share. Empty tiers get 0; disabled: proportional to size (uniform)."""
        sizes = self.tier_sizes()
        if not self.enabled:
            return [n / len(self.tiers) for n in sizes]
        live = [t for t, n in enumerate(sizes) if n > 0]
        mass = {t: sizes[t] * self.informative[t] for t in live}
        total = sum(mass.values())
        floor = self.min_weight
        out = [0.0] * self.num_tiers
        for t in live:
            share = mass[t] / total if total > 0 else 1.0 / len(live)
            out[t] = floor + (1.0 - floor * len(live)) * share
        return out

    def sample(self, k: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[Record]:
        """k distinct prompts not in `exclude` (fewer only if too few are left): tier by weight, then uniform."""
        members: list[list[str]] = [[] for _ in range(self.num_tiers)]
        for rid, tier in self.tiers.items():
            if rid not in exclude:
                members[tier].append(rid)
        weights = self.weights()
        chosen: list[str] = []
        for _ in range(min(k, sum(map(len, members)))):
            live = [t for t in range(self.num_tiers) if members[t] and weights[t] > 0]
            if not live:  # the weighted tiers ran out within this draw: take from any tier left
                live, weights = [t for t in range(self.num_tiers) if members[t]], [1.0] * self.num_tiers
            tier = self.rng.choices(live, weights=[weights[t] for t in live])[0]
            pool = members[tier]
            if self.domain_weights is None:
                index = self.rng.randrange(len(pool))
            else:
                weights_in = [self.domain_weights.get(self.records[rid].domain, 1.0) for rid in pool]
                index = self.rng.choices(range(len(pool)), weights=weights_in)[0] if sum(weights_in) > 0 else 0
            chosen.append(pool.pop(index))
        return [self.records[rid] for rid in chosen]

    # ---- feedback ------------------------------------------------------------------------------
    def update(self, results: list[tuple[str, list[bool]]]) -> None:
        """results: (record id, pass/fail of each sample of its group) for every rolled-out group."""
        seen = [0] * self.num_tiers
        useful = [0] * self.num_tiers
        for rid, passes in results:
            tier = self.tiers[rid]  # the tier it was drawn from
            seen[tier] += 1
            useful[tier] += int(0 < sum(passes) < len(passes))
            hist = self.history.setdefault(rid, deque(maxlen=self.window))
            hist.append(sum(passes) / len(passes))
            self.tiers[rid] = tier_of(sum(hist) / len(hist), self.num_tiers)
        for t in range(self.num_tiers):
            if seen[t]:
                self.informative[t] = self.ema * self.informative[t] + (1 - self.ema) * useful[t] / seen[t]

    # ---- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"tiers": dict(self.tiers), "history": {k: list(v) for k, v in self.history.items()},
                "informative": list(self.informative), "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tiers = dict(state["tiers"])
        self.history = {k: deque(v, maxlen=self.window) for k, v in state["history"].items()}
        self.informative = list(state["informative"])
        self.rng.setstate(state["rng"])


class DynamicSampling:
    """Oversampling factor for the next draw, from an EMA of 1 / (1 - invalid_rate)."""

    def __init__(self, enabled: bool = True, ema: float = 0.9, max_factor: float = 3.0):
        self.enabled, self.ema, self.max_factor = enabled, ema, max_factor
        self.expansion = 1.0

    def num_to_draw(self, target: int) -> int:
        return math.ceil(target * min(self.expansion, self.max_factor)) if self.enabled else target

    def update(self, invalid_rate: float) -> None:
        ratio = self.max_factor if invalid_rate >= 1 else min(self.max_factor, 1.0 / (1.0 - invalid_rate))
        self.expansion = self.ema * self.expansion + (1 - self.ema) * ratio

    def state_dict(self) -> dict[str, Any]:
        return {"expansion": self.expansion}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.expansion = state["expansion"]
