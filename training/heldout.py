"""Held-out evaluation every `eval_every` steps, on the rollout engine the trainer already holds.

No server, no HTTP: the engine that just took the new weights generates each held-out record at
each budget of `eval_think_budgets`, with the budget forced exactly as in rollouts (one
`BudgetParams` per budget, shrunk like the rollout budget so the answer fits). Each response is
split from its token ids (`Response.from_ids`, with the params it was generated under) and scored
by `thinkcap eval`'s own `scoring.score.score_parsed`, so `eval/accuracy@32` here means what
`thinkcap eval` reports at budget 32 (which in turn is the training reward's accuracy).

Under torchrun each rank evaluates `records[rank::world]` and the per-response rows are gathered,
so every rank computes the same numbers over the whole set.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from budget import ThinkProfile
from training import dist
from training.config import ConfigError, GRPOConfig
from tasks.records import Record, load_records
from training.prompts import EncodedPrompt, PromptEncoder
from scoring.score import eval_reward_fns
from scoring.verifiers import DOMAINS
from training.rollout.generate import EVAL_STREAM, generate_and_score, request_seeds, step_key
from training.rollout.samples import rollout_params


class HeldOut:
    def __init__(self, cfg: GRPOConfig, engine: Any, encode: PromptEncoder, profile: ThinkProfile, tokenizer: Any,
                 rank: int, world: int):
        try:
            records = load_records(cfg.eval_data, DOMAINS, cfg.system_prompt)
        except (ValueError, OSError) as err:
            raise ConfigError(f"eval_data: {err}") from err
        self.cfg, self.engine, self.profile, self.tokenizer = cfg, engine, profile, tokenizer
        self.rank, self.world = rank, world
        self.records: list[Record] = records[rank::world]
        self.params = {b: rollout_params(b, cfg, profile) for b in cfg.eval_budgets()}
        # Encoded once per budget (a budget hint makes each budget its own prompt), reused every eval.
        self.prompts: dict[int, list[EncodedPrompt]] = {
            b: [encode(r, p.think_budget) for r in self.records] for b, p in self.params.items()}

    def due(self, step: int) -> bool:
        return step % self.cfg.eval_every == 0 or step == self.cfg.steps

    def evaluate(self, step: int) -> dict[str, float]:
        """`eval/accuracy@{b}`, `eval/{domain}/accuracy@{b}`, `eval/format@{b}`, `eval/think_len@{b}`,
        `eval/responses@{b}` over the whole held-out set (all ranks), and `time/eval_s`."""
        started = time.perf_counter()
        rows = [row for budget in self.params for row in self._run(step, budget)]
        every = [r for part in dist.gather(rows, self.world) for r in part]
        out = summarize_eval(every)
        out["time/eval_s"] = time.perf_counter() - started
        return out

    def _run(self, step: int, budget: int) -> list[dict[str, Any]]:
        """Generate and score this rank's records at one budget: one row per response."""
        cfg, params, prompts = self.cfg, self.params[budget], self.prompts[budget]
        if not prompts:
            return []
        n = cfg.eval_samples
        # Seeds apart from the rollouts' and the same at every budget, so budgets are compared on
        # the same random draws where the engine allows it.
        seeds = request_seeds(step_key(cfg.seed, step, EVAL_STREAM), len(prompts), n, self.rank, self.world)
        # `thinkcap eval`'s reward table (scoring.score): eval accuracy means the same in both
        groups = generate_and_score(self.engine, self.records, prompts, params=params, reward_fns=eval_reward_fns(),
                                    profile=self.profile, tokenizer=self.tokenizer, n=n,
                                    temperature=cfg.eval_temperature,
                                    top_p=cfg.top_p if cfg.eval_temperature > 0 else 1.0,
                                    max_tokens=cfg.max_new_tokens, seeds=seeds)
        return [{"budget": budget, "domain": s.record.domain, "accuracy": float(s.score["accuracy"]),
                 "format": float(s.score["format"] == 1.0), "think": s.response.num_thinking_tokens}
                for group in groups for s in group]


def summarize_eval(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean accuracy (and format rate, thinking length) per budget, overall and per domain."""
    by_budget: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_budget[r["budget"]].append(r)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    out: dict[str, float] = {}
    for budget, mine in sorted(by_budget.items()):
        out[f"eval/accuracy@{budget}"] = mean([r["accuracy"] for r in mine])
        out[f"eval/format@{budget}"] = mean([r["format"] for r in mine])
        out[f"eval/think_len@{budget}"] = mean([r["think"] for r in mine])
        out[f"eval/responses@{budget}"] = float(len(mine))  # over all ranks: records x eval_samples
        for domain in sorted({r["domain"] for r in mine}):
            out[f"eval/{domain}/accuracy@{budget}"] = mean([r["accuracy"] for r in mine if r["domain"] == domain])
    return out
