"""Generate on the rollout engine at a budget, then score: the one path held-out evaluation,
difficulty labelling and the learning benches take (training rollouts add loss masks and
advantages on top, in collect.py, but draw their seeds by the same rule).

The response is split from its token ids with the very `BudgetParams` the engine forced with, so a
forced close is recognised as forced, exactly as in rollouts and in `thinkcap serve`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budget import BudgetParams, ThinkProfile
from scoring.response import Response
from scoring.rewards import RewardFn
from tasks.records import Record
from training.prompts import EncodedPrompt
from training.rollout.samples import Completion

# Seed streams of `step_key`: held-out evaluation sits apart from the rollouts (an odd offset),
# whose stream is the refill round times ROUND_STREAM.
ROUND_STREAM = 7_919
EVAL_STREAM = 4_999
ANYTIME_STREAM = 3_001  # answers at the cuts of a round's thoughts (`anytime_cuts`)


def step_key(seed: int, step: int, stream: int) -> int:
    """A seed key per (run seed, step, stream), far apart for neighbouring arguments."""
    return seed * 1_000_003 + step * 10_007 + stream


def request_seeds(key: int, n_prompts: int, n: int, rank: int = 0, world: int = 1) -> list[int]:
    """The one seed rule: request i of this rank gets (key + rank + world * i) * n. vLLM seeds sample
    k of a request with seed + k, so requests n apart never share a random stream, and ranks
    interleave so no two ranks do either."""
    return [(key + rank + world * i) * n for i in range(n_prompts)]


@dataclass(frozen=True)
class Scored:
    record: Record
    completion: Completion
    response: Response
    score: dict[str, float]  # the domain's reward parts: "reward", "format", "accuracy"


def generate_and_score(engine: Any, records: Sequence[Record], prompts: Sequence[EncodedPrompt], *,
                       params: BudgetParams, reward_fns: dict[str, RewardFn], profile: ThinkProfile,
                       tokenizer: Any, n: int, temperature: float, top_p: float, max_tokens: int,
                       seeds: list[int]) -> list[list[Scored]]:
    """`n` samples per record at `params`, each scored by its domain's reward; one list per record."""
    if not prompts:
        return []
    groups = engine.generate(list(prompts), n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                             budget=params, seeds=seeds)
    out = []
    for record, prompt, group in zip(records, prompts, groups, strict=True):
        row = []
        for c in group:
            response = Response.from_ids(c.token_ids, profile, tokenizer, prompt.input_ids, params)
            row.append(Scored(record, c, response, reward_fns[record.domain](response, record.answer)))
        out.append(row)
    return out
