"""GRPO with forced answering, as in the GLM-4.1V-Thinking report: the whole RL loop, top to bottom.

    thinkcap train examples/grpo_tiny.yaml [--field value ...]
    torchrun --nproc_per_node 2 -m training examples/grpo_tiny.yaml --rollout_engine hf

Each iteration: draw prompts (curriculum tiers x dynamic oversampling) → G rollouts per prompt with
the thinking budget (at the budget `</think><answer>` is forced and the sample goes on to answer) →
rewards → group-normalised advantages → drop zero-variance groups → clipped policy-gradient update
(forced tokens masked out) → weights into the rollout engine → log, checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from budget import BudgetParams, build_profile
from training import dist
from training.checkpoint import list_checkpoints, load_trainer_state, save_checkpoint, set_rng_state
from training.config import GRPOConfig
from training.curriculum import Curriculum, DynamicSampling
from training.data import PromptEncoder, load_records
from training.grpo import aggregate, clipped_surrogate, group_advantages, kl_k3
from training.policy import SequenceLogprobs, collate, load_policy, token_logprobs
from training.rewards import RewardFn, build_reward_fns
from training.rollout import HFEngine, Sample, rollout_budget, to_sample
from training.tracking import Tracker, plot_rewards, summarize


def resolve_model(name: str) -> str:
    if name == "tiny":
        from thinkcap.tiny_model import ensure_tiny_model

        return str(ensure_tiny_model())
    return name


def make_engine(cfg: GRPOConfig, model_path: str, policy: torch.nn.Module, profile: Any, processor: Any,
                world: int) -> Any:
    if cfg.rollout_engine == "vllm" and world > 1:
        raise ValueError("rollout_engine=vllm runs one colocated engine in a single process; under torchrun "
                         "use --rollout_engine hf (or auto)")
    use_vllm = cfg.rollout_engine == "vllm"
    if cfg.rollout_engine == "auto":
        try:
            import vllm  # noqa: F401

            use_vllm = world == 1  # one colocated engine per process does not fit data parallel here
        except ImportError:
            use_vllm = False
    if use_vllm:
        from training.vllm_engine import VLLMEngine

        return VLLMEngine(model_path, seed=cfg.seed, max_model_len=cfg.vllm_max_model_len,
                          gpu_memory_utilization=cfg.vllm_gpu_memory_utilization)
    eos = policy.generation_config.eos_token_id
    return HFEngine(policy, profile, processor.tokenizer.pad_token_id, eos if isinstance(eos, list) else [eos])


def train(cfg: GRPOConfig, *, reward_fns: dict[str, RewardFn] | None = None, engine: Any = None,
          stop_after: int | None = None, on_step: Callable[[int, list[Sample]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) training. `reward_fns` replaces the domain → reward registry; `engine` reuses
    a rollout engine across runs (tests, benchmark); `stop_after` returns right after that step, as
    if killed; `on_step` sees each step's samples after the update."""
    from transformers import AutoProcessor

    # ------------------------------------------------------------------------------------------
    # Setup: processes, model, data, optimizer, curriculum, and the newest checkpoint if any
    # ------------------------------------------------------------------------------------------
    rank, world, device = dist.init()
    if cfg.prompts_per_step % world:
        raise ValueError(f"prompts_per_step ({cfg.prompts_per_step}) must divide evenly over {world} ranks")
    torch.manual_seed(cfg.seed)
    model_path = resolve_model(cfg.model)
    processor = AutoProcessor.from_pretrained(model_path)
    tokenizer = processor.tokenizer
    policy = load_policy(model_path, cfg.dtype).to(device).train()
    profile = build_profile(tokenizer, model_type=policy.config.model_type)
    reward_fns = reward_fns or build_reward_fns(cfg.min_reward, cfg.repetition_penalty, cfg.language_mix_penalty)
    records = load_records(cfg.train_data, set(reward_fns), cfg.system_prompt)
    if len(records) < world:
        raise ValueError(f"{cfg.train_data} has {len(records)} records for {world} ranks: every rank needs a prompt")
    encode = PromptEncoder(processor)
    reference = (SequenceLogprobs(load_policy(model_path, cfg.dtype).to(device).eval(), cfg.temperature)
                 if cfg.kl_coef > 0 else None)
    model = SequenceLogprobs(policy, cfg.temperature)
    if world > 1:  # vision params sit idle on text-only batches, hence find_unused_parameters
        model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps else 1.0)
    curriculum = Curriculum(records, cfg.num_tiers, cfg.curriculum, cfg.tier_ema, cfg.tier_min_weight,
                            cfg.online_window, cfg.seed)
    oversampling = DynamicSampling(cfg.dynamic_sampling, cfg.oversample_ema, cfg.max_oversample)
    history: list[dict[str, Any]] = []
    start = 0
    checkpoints = list_checkpoints(cfg.output_dir) if cfg.resume else []
    if checkpoints:
        state, rng = load_trainer_state(checkpoints[-1], rank)
        policy.load_state_dict(load_policy(str(checkpoints[-1] / "policy"), cfg.dtype).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        curriculum.load_state_dict(state["curriculum"])
        oversampling.load_state_dict(state["oversampling"])
        history, start = state["history"], state["step"]
        set_rng_state(rng)
    engine = engine or make_engine(cfg, model_path, policy, profile, processor, world)
    engine.load_weights(policy.named_parameters())  # the engine may hold other weights (base, last run)
    budget = rollout_budget(cfg.rollout_think_budget, cfg.max_new_tokens, len(profile.closing_ids), cfg.answer_reserve)
    tracker = Tracker(cfg.output_dir, cfg.steps, history, rank == 0, cfg.tensorboard, cfg.progress_bar)
    local_prompts = cfg.prompts_per_step // world

    for step in range(start + 1, cfg.steps + 1):
        # --------------------------------------------------------------------------------------
        # Rollout: every rank draws the same global prompt list (same curriculum RNG) and takes
        # its slice; oversampled so that enough groups survive dynamic sampling
        # --------------------------------------------------------------------------------------
        tier_weights = curriculum.weights()
        drawn = curriculum.sample(oversampling.num_to_draw(cfg.prompts_per_step))
        mine = drawn[rank::world]
        prompts = [encode(r) for r in mine]
        # vLLM seeds sample k of a request with seed + k: space the requests' seeds G apart so that
        # no two samples of a step share a random stream.
        seeds = [(cfg.seed * 1_000_003 + step * 10_007 + rank + world * i) * cfg.group_size for i in range(len(mine))]
        groups = engine.generate(
            prompts, cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
            budget=BudgetParams(think_budget=budget) if cfg.forced_answering else None, seeds=seeds)
        samples = [to_sample(c, g, prompts[g], profile, budget, cfg.forced_answering)
                   for g, group in enumerate(groups) for c in group]

        # --------------------------------------------------------------------------------------
        # Rewards: format gate, accuracy on the boxed answer, style penalties; truncated samples
        # (forced answering off) get the minimum reward
        # --------------------------------------------------------------------------------------
        for s in samples:
            record = mine[s.group]
            s.text = tokenizer.decode(s.response_ids, skip_special_tokens=True)
            s.reward = ({"reward": cfg.min_reward, "format": 0.0, "accuracy": 0.0} if s.truncated
                        else reward_fns[record.domain](s.text, record.answer))
        rewards = torch.tensor([s.reward["reward"] for s in samples]).view(len(mine), cfg.group_size)  # [N, G]
        advantages = group_advantages(rewards, cfg.scale_advantages)  # [N, G]
        passes = [[s.reward["accuracy"] >= cfg.pass_threshold for s in samples[g * cfg.group_size:(g + 1) * cfg.group_size]]
                  for g in range(len(mine))]
        results = [res for part in dist.gather([(r.id, p) for r, p in zip(mine, passes)], world) for res in part]
        curriculum.update(results)  # identical on every rank: each sees all groups

        # Dynamic sampling: a group whose rewards all equal has zero advantage: drop it, keep up to
        # `local_prompts` informative groups. At least one group stays so every rank runs the same
        # number of backward passes (a zero-advantage group adds nothing to the gradient).
        valid = (rewards.std(dim=1) > 0).tolist()  # [N]
        invalid_rate = 1.0 - sum(dist.all_sum([sum(valid)], world, device)) / len(drawn)
        oversampling.update(invalid_rate)
        keep = ([g for g in range(len(mine)) if valid[g] or not cfg.dynamic_sampling] or [0])[:local_prompts]
        for s, adv in zip(samples, advantages.view(-1).tolist()):
            s.advantage = adv
        kept = [s for s in samples if s.group in keep]

        # --------------------------------------------------------------------------------------
        # Loss inputs: minibatches of the kept samples with the log-probs of the policy that
        # sampled them (the PPO ratio's denominator) and of the reference (KL), before any update
        # --------------------------------------------------------------------------------------
        order = torch.randperm(len(kept), generator=torch.Generator().manual_seed(cfg.seed + step)).tolist()
        minibatches = []
        with torch.no_grad():
            for part in torch.tensor_split(torch.tensor(order), cfg.num_minibatches):
                rows = [kept[i] for i in part.tolist()]
                batch = collate(rows, tokenizer.pad_token_id).to(device)
                adv = torch.tensor([s.advantage for s in rows], device=device)  # [B]
                old_logp = token_logprobs(model, batch)  # [B, L-1]
                ref_logp = token_logprobs(reference, batch) if reference is not None else None  # [B, L-1]
                minibatches.append((batch, adv, old_logp, ref_logp))

        # --------------------------------------------------------------------------------------
        # Loss & update: clipped surrogate per token (clip-higher) + optional k3 KL, forced tokens
        # masked, aggregated per sample (or per token); one optimizer step per minibatch
        # --------------------------------------------------------------------------------------
        update_stats: dict[str, list[float]] = {"loss": [], "clip_frac": [], "kl": [], "grad_norm": []}
        for _ in range(cfg.ppo_epochs):
            for batch, adv, old_logp, ref_logp in minibatches:
                mask = batch.loss_mask  # [B, L-1]: 1 on sampled response tokens, 0 on forced/prompt/pad
                n_samples, n_tokens = dist.all_sum([len(batch), mask.sum().item()], world, device)
                logp = token_logprobs(model, batch)  # [B, L-1]
                per_token, clipped = clipped_surrogate(logp, old_logp, adv, cfg.clip_low, cfg.clip_high)  # [B, L-1]
                kl = kl_k3(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)  # [B, L-1]
                # DDP averages gradients over ranks, so each rank normalises by the global count / world.
                loss = aggregate(per_token + cfg.kl_coef * kl, mask, cfg.loss_aggregation,
                                 num_samples=n_samples / world, num_tokens=n_tokens / world)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
                norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
                optimizer.step()
                scheduler.step()
                masked_mean = lambda t: ((t * mask).sum() / mask.sum().clamp(min=1)).item()  # noqa: E731
                update_stats["loss"].append(loss.item())
                update_stats["clip_frac"].append(masked_mean(clipped.float()))
                update_stats["kl"].append(masked_mean(kl.detach()))
                update_stats["grad_norm"].append(norm.item())
        engine.load_weights(policy.named_parameters())  # rollouts of the next step use the new policy

        # --------------------------------------------------------------------------------------
        # Log: every reward component, pass rates, lengths, forced-answer rate, clipping, tiers;
        # then checkpoint
        # --------------------------------------------------------------------------------------
        local = {f"train/{k}": sum(v) / len(v) for k, v in update_stats.items()}
        if kept[0].engine_logprobs is not None:  # vLLM: how far its log-probs are from the trainer's
            local["rollout/logprob_mismatch"] = sum(
                ((b.engine_logprobs - o).abs() * b.loss_mask).sum().item() / b.loss_mask.sum().clamp(min=1).item()
                for b, _, o, _ in minibatches) / len(minibatches)
        stats = [{"group": f"{rank}:{s.group}", "task": mine[s.group].task, "reward": s.reward,
                  "response_len": len(s.response_ids), "think_len": s.num_thinking_tokens,
                  "forced": s.answer_forced, "truncated": s.truncated} for s in samples]
        metrics = summarize([x for part in dist.gather(stats, world) for x in part], cfg.pass_threshold)
        metrics.update(dist.mean(local, world, device))
        metrics.update({f"curriculum/tier{t}_weight": w for t, w in enumerate(tier_weights)})
        metrics.update({"sampling/invalid_rate": invalid_rate, "sampling/expansion": oversampling.expansion,
                        "sampling/groups_kept": float(len(keep)), "train/lr": scheduler.get_last_lr()[0]})
        history.append({"step": step, **metrics})
        tracker.log(step, metrics)
        if on_step is not None:
            on_step(step, samples)
        if step == cfg.steps or (cfg.save_every and step % cfg.save_every == 0):
            trainer_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "curriculum": curriculum.state_dict(), "oversampling": oversampling.state_dict(),
                             "history": history, "config": cfg.to_dict()}
            save_checkpoint(cfg.output_dir, step, policy, model_path, trainer_state, rank, world, cfg.keep_checkpoints)
        if stop_after is not None and step >= stop_after:
            break

    tracker.close()
    plot = None
    if rank == 0 and history and (stop_after is None or stop_after >= cfg.steps):
        plot = plot_rewards({Path(cfg.output_dir).name: history}, Path(cfg.output_dir) / "reward_curve.png")
    final = list_checkpoints(cfg.output_dir)
    dist.barrier(world)
    return {"history": history, "engine": engine, "policy": policy, "reward_curve": plot,
            "checkpoint": final[-1] if final else None}
