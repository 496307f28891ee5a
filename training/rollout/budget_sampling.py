"""Rollout budgets drawn from a distribution, and advantages that compare samples of one budget.

Training at one fixed budget teaches a policy to answer well at that budget only; a server imposes
whatever budget its client asks for. With `rollout_budget_choices` every prompt group (or every
sample) gets its own thinking budget, drawn here:

    "0,4,8,16,32"        uniform over the list
    "loguniform:4-64"    log-uniform integers between the bounds (inclusive)

Each drawn budget becomes its own `BudgetParams`, so the engines force `</think><answer>` at it
through the one budget state machine (`budget/`), and replay marks the same forced positions.

Budget-aware advantages: a sample forced to answer after 4 tokens should not be judged against one
that thought for 32, so rewards are normalised within the samples of a group that share a budget.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from training.learner.grpo import advantages_of


@dataclass(frozen=True)
class BudgetDistribution:
    choices: tuple[int, ...] = ()  # uniform over these, or
    low: int = 0  # log-uniform over [low, high] when choices is empty
    high: int = 0

    @property
    def max_budget(self) -> int:
        return max(self.choices) if self.choices else self.high

    def draw(self, rng: random.Random, k: int, stratified: bool) -> list[int]:
        """k budgets. `stratified` (per-sample budgets over a list): cycle through a shuffled copy
        of the list so every group holds each budget about equally often, which keeps same-budget
        subgroups large enough to compare (budget-aware advantages)."""
        if self.choices:
            if not stratified:
                return [rng.choice(self.choices) for _ in range(k)]
            order = list(self.choices)
            rng.shuffle(order)
            return [order[i % len(order)] for i in range(k)]
        lo, hi = math.log(self.low), math.log(self.high + 1)  # +1: the top integer is as likely as the rest
        return [min(self.high, int(math.exp(rng.uniform(lo, hi)))) for _ in range(k)]


def parse_budget_choices(text: str) -> BudgetDistribution | None:
    """"" → None (the fixed rollout_think_budget); raises ValueError naming what to write."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("loguniform:"):
        low, _, high = text.removeprefix("loguniform:").partition("-")
        try:
            lo, hi = int(low), int(high)
        except ValueError:
            raise ValueError(f"rollout_budget_choices: expected 'loguniform:LOW-HIGH' with integers, got {text!r}") from None
        if not 1 <= lo <= hi:
            raise ValueError(f"rollout_budget_choices: need 1 <= LOW <= HIGH in 'loguniform:LOW-HIGH'; got {text!r} "
                             "(log-uniform cannot reach 0: list 0 explicitly, e.g. '0,4,8,16,32')")
        return BudgetDistribution(low=lo, high=hi)
    try:
        choices = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"rollout_budget_choices: expected integers like '0,4,8,16,32' or 'loguniform:4-64', "
                         f"got {text!r}") from None
    if any(c < 0 for c in choices):
        raise ValueError(f"rollout_budget_choices: budgets must be >= 0; got {text!r}")
    return BudgetDistribution(choices=choices)


def draw_budgets(dist: BudgetDistribution, groups: int, group_size: int, per: str, key: str) -> list[list[int]]:
    """Budgets [groups][group_size]: one per group (`per="group"`) or one per sample. `key` names the
    draw (seed, step, round, rank): the same key gives the same budgets, so a resumed run repeats them."""
    rng = random.Random(key)  # a str seed is hashed with SHA-512: stable across processes
    if per == "group":
        return [[b] * group_size for b in dist.draw(rng, groups, stratified=False)]
    return [dist.draw(rng, group_size, stratified=True) for _ in range(groups)]


def budget_advantages(rewards: Tensor, budgets: list[list[int]], scale: bool = True, estimator: str = "grpo",
                      passed: Tensor | None = None) -> Tensor:
    """rewards [N, G], a budget per sample → advantages [N, G] computed within the samples of each
    group that share a budget (GRPO's group advantage, or `estimator` "best", per same-budget
    subgroup). A subgroup of one sample has nothing to compare with: advantage 0. With one budget per
    group this is the estimator on whole groups."""
    out = torch.zeros_like(rewards)  # [N, G]
    for n, row in enumerate(budgets):
        members: dict[int, list[int]] = defaultdict(list)
        for g, b in enumerate(row):
            members[b].append(g)
        for idx in members.values():
            mine = None if passed is None else passed[n, idx].unsqueeze(0)  # [1, len(idx)]
            out[n, idx] = advantages_of(rewards[n, idx].unsqueeze(0), estimator, scale, mine)[0]  # [len(idx)]
    return out


BALANCE_CAP = 4.0  # the most a budget's advantages are scaled up: one lone group must not drive a step


def balance_weights(push: dict[int, float], cap: float = BALANCE_CAP) -> dict[int, float]:
    """Per-budget factors {budget: w} that give every budget with signal the same `push` size:
    w = mean |push| / own |push|, at most `cap`; a budget with no push (0) gets weight 1.

    Why: dynamic sampling drops groups whose rewards all agree, and how many survive depends on the
    budget, not on how much that budget needs to change (running sums, `8,32`: most 32-groups are all
    correct and dropped, so the 8-groups outvote them and the policy goes short at every budget; with
    a length term the balance tips the other way by seed). Equal pushes are self-correcting: a budget
    whose groups grow rare as the policy drifts away from what it wants keeps its full say."""
    size = {b: abs(p) for b, p in push.items()}
    live = {b: m for b, m in size.items() if m > 0}
    if not live:
        return {b: 1.0 for b in push}
    target = sum(live.values()) / len(live)
    return {b: min(cap, target / live[b]) if b in live else 1.0 for b in push}


def budget_pushes(sums: dict[int, list[float]], mode: str) -> dict[int, float]:
    """Each budget's push from its sums [Σ|A|, ΣA, ΣA·ℓ, Σℓ, n] (ℓ = thinking tokens):
    mass = Σ|A| (how much the budget moves the policy at all); length = ΣA·(ℓ − mean ℓ), signed (how
    hard it pushes thinking longer (+) or shorter (−): the direction budgets disagree on)."""
    if mode == "mass":
        return {b: v[0] for b, v in sums.items()}
    return {b: v[2] - v[3] / v[4] * v[1] for b, v in sums.items()}


def balance_budgets(samples: list[Any], world: int, mode: str = "mass") -> dict[int, float]:
    """Scale each kept sample's `advantage` in place by its budget's `balance_weights` of
    `budget_pushes` (sums over every rank, so all ranks scale alike); returns the weights for logging."""
    from training import dist

    def add(into: dict[int, list[float]], budget: int, terms: Sequence[float]) -> None:
        into[budget] = [x + y for x, y in zip(into.get(budget, [0.0] * 5), terms)]

    sums: dict[int, list[float]] = {}  # budget -> [Σ|A|, ΣA, ΣA·ℓ, Σℓ, n] on this rank
    for s in samples:
        a, n = s.advantage, s.num_thinking_tokens
        add(sums, s.think_budget, (abs(a), a, a * n, n, 1))
    total: dict[int, list[float]] = {}
    for part in dist.gather(sums, world):
        for b, v in part.items():
            add(total, b, v)
    weights = balance_weights(budget_pushes(total, mode))
    for s in samples:
        s.advantage *= weights[s.think_budget]
    return weights


def budget_metrics(stats: list[dict[str, Any]]) -> dict[str, float]:
    """`rollout/think_budget_mean` and reward / accuracy per budget, from per-sample stats that carry
    `think_budget` (None when the rollout had no budget). Where samples name their thought's `form`
    (the running-sum task: "short" / "long"), also each form's share and accuracy per budget: which
    form the policy writes under which budget, and which one pays there, is what budget conditioning
    has to learn."""
    with_budget = [s for s in stats if s.get("think_budget") is not None]
    if not with_budget:
        return {}
    out = {"rollout/think_budget_mean": sum(s["think_budget"] for s in with_budget) / len(with_budget)}
    by_budget: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in with_budget:
        by_budget[s["think_budget"]].append(s)
    # A fixed budget's lines would only repeat reward/mean; a log-uniform draw's dozens of integers
    # would bury the rest, so only a short list of budgets gets lines of its own.
    if 1 < len(by_budget) <= 8:
        for b, rows in sorted(by_budget.items()):
            out[f"budget/{b}/reward"] = sum(r["reward"]["reward"] for r in rows) / len(rows)
            out[f"budget/{b}/accuracy"] = sum(r["reward"].get("accuracy", 0.0) for r in rows) / len(rows)
            out.update(form_metrics(f"budget/{b}", rows))
            opened = [{**r, "form": r["opened"]} for r in rows if r.get("opened") is not None]
            out.update({k: v for k, v in form_metrics(f"budget/{b}/opened", opened).items() if k.endswith("_accuracy")})
    return out


def form_metrics(prefix: str, rows: list[dict[str, Any]]) -> dict[str, float]:
    """`{prefix}/{form}_share` and `{prefix}/{form}_accuracy` over the rows that name a form."""
    named = [r for r in rows if r.get("form") is not None]
    out: dict[str, float] = {}
    for form in sorted({r["form"] for r in named}):
        mine = [r for r in named if r["form"] == form]
        out[f"{prefix}/{form}_share"] = len(mine) / len(named)
        out[f"{prefix}/{form}_accuracy"] = sum(r["reward"].get("accuracy", 0.0) for r in mine) / len(mine)
    return out
