"""Offline curriculum tiers: sample k answers per record with a model, write pass@k and the tier.

    thinkcap train --label-difficulty IN.jsonl OUT.jsonl --model PATH [--k 8] [--num-tiers 3]

Each output record gains `pass_rate` (share of the k samples that pass), `pass_at_k` (any passed)
and `difficulty` = floor((1 - pass_rate) * num_tiers) capped at num_tiers - 1 (0 = easiest), the
tier `training.curriculum` starts the record in. Rollouts use the trainer's engine and budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from budget import build_profile
from training.config import GRPOConfig
from training.curriculum import tier_of
from tasks.records import load_records
from training.prompts import PromptEncoder
from scoring.rewards import build_reward_fns
from training.rollout.generate import generate_and_score, request_seeds
from training.rollout.samples import rollout_params


def label(in_path: str, out_path: str, cfg: GRPOConfig, k: int, batch: int = 16) -> list[dict]:
    from transformers import AutoProcessor

    from training.learner.policy import load_policy
    from training.train import make_engine, resolve_model

    model_path = resolve_model(cfg.model)
    processor = AutoProcessor.from_pretrained(model_path)
    policy = load_policy(model_path, cfg.dtype).eval()
    profile = build_profile(processor.tokenizer, model_type=policy.config.model_type)
    reward_fns = build_reward_fns(cfg.min_reward, cfg.repetition_penalty_weight, cfg.language_mix_penalty_weight)
    records = load_records(in_path, set(reward_fns))
    encode = PromptEncoder(processor, cfg.hint())
    engine = make_engine(cfg, model_path, policy, profile, processor, world=1, records=records)
    params = rollout_params(cfg.rollout_think_budget, cfg, profile)  # one object: generation and the reward's replay
    raw = [json.loads(line) for line in Path(in_path).read_text().splitlines() if line.strip()]
    out = []
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        prompts = [encode(r, params.think_budget) for r in chunk]
        groups = generate_and_score(engine, chunk, prompts, params=params, reward_fns=reward_fns, profile=profile,
                                    tokenizer=processor.tokenizer, n=k, temperature=cfg.temperature,
                                    top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                                    seeds=request_seeds(cfg.seed + start, len(chunk), k))
        for i, group in enumerate(groups):
            passes = [s.score["accuracy"] >= cfg.pass_threshold for s in group]
            rate = sum(passes) / len(passes)
            out.append({**raw[start + i], "pass_rate": rate, "pass_at_k": float(any(passes)),
                        "difficulty": tier_of(rate, cfg.num_tiers)})
    Path(out_path).write_text("".join(json.dumps(r) + "\n" for r in out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkcap train --label-difficulty", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="JSONL records")
    parser.add_argument("output", help="JSONL to write (relative media paths keep working if it sits beside the input)")
    parser.add_argument("--model", default="tiny", help="model that samples (default: the tiny model)")
    parser.add_argument("--k", type=int, default=8, help="samples per record (default 8)")
    parser.add_argument("--num-tiers", type=int, default=3, help="difficulty tiers (default 3)")
    parser.add_argument("--engine", default="auto", choices=("auto", "vllm", "hf"), help="rollout engine")
    parser.add_argument("--think-budget", type=int, default=128, help="rollout thinking budget (default 128)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="response length cap (default 256)")
    args = parser.parse_args(argv)
    cfg = GRPOConfig(model=args.model, train_data=args.input, num_tiers=args.num_tiers, rollout_engine=args.engine,
                     rollout_think_budget=args.think_budget, max_new_tokens=args.max_new_tokens)
    out = label(args.input, args.output, cfg, args.k)
    tiers = [sum(r["difficulty"] == t for r in out) for t in range(args.num_tiers)]
    print(f"labelled {len(out)} records into {args.output}; per tier (0 = easiest): {tiers}")
    return 0
