"""Held-out accuracy of a policy in the learning benches: `generate_and_score` at a budget, with
the rollout's own `rollout_params` (the budget shrunk to the run's max_new_tokens and
answer_reserve, as `thinkcap serve` shrinks it), reported per task."""

from __future__ import annotations

from typing import Any

from training.config import GRPOConfig

SEED = 12345  # the benches' held-out seed key: every arm and budget is scored on the same draws


def evaluate(engine: Any, policy: Any, records: list, model_dir: str, budget: int | None, cfg: GRPOConfig,
             samples: int = 4, temperature: float = 1.0) -> dict[str, float]:
    """Mean accuracy of `policy` on held-out records (never trained on), with forced answering at
    `budget` under `cfg`'s max_new_tokens and answer_reserve (and `cfg`'s budget hint, showing that
    budget); per task too, mean thinking tokens, and the share of short-form thoughts (running sums)."""
    from transformers import AutoProcessor

    from budget import build_profile
    from scoring.rewards import build_reward_fns
    from tasks.running_sums import TASK, thought_form
    from training.prompts import PromptEncoder
    from training.rollout.generate import generate_and_score, request_seeds
    from training.rollout.samples import rollout_params

    processor = AutoProcessor.from_pretrained(model_dir)
    profile = build_profile(processor.tokenizer, model_type=policy.config.model_type)
    encode = PromptEncoder(processor, cfg.hint())
    engine.load_weights(policy.named_parameters())
    params = rollout_params(budget, cfg, profile)
    groups = generate_and_score(engine, records, [encode(r, params.think_budget) for r in records],
                                params=params, reward_fns=build_reward_fns(),
                                profile=profile, tokenizer=processor.tokenizer, n=samples, temperature=temperature,
                                top_p=1.0, max_tokens=cfg.max_new_tokens,
                                seeds=request_seeds(SEED, len(records), samples))
    scores: dict[str, list[float]] = {}
    thinking: list[int] = []
    forms: list[bool] = []  # running sums: whether a thought is in the short form (`a3 b8`, no `=`)
    for group in groups:
        for s in group:
            scores.setdefault(s.record.task, []).append(s.score["accuracy"])
            thinking.append(s.response.num_thinking_tokens)
            form = thought_form(s.response.thinking) if s.record.task == TASK else None
            if form is not None:
                forms.append(form == "short")
    out = {f"accuracy/{task}": sum(v) / len(v) for task, v in sorted(scores.items())}
    every = [x for v in scores.values() for x in v]
    out["accuracy"] = sum(every) / len(every)
    out["think_tokens"] = sum(thinking) / len(thinking)
    out["short_share"] = sum(forms) / len(forms) if forms else float("nan")
    return out
