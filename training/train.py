"""GRPO with forced answering, as in the GLM-4.1V-Thinking report: the whole RL loop, top to bottom.

    thinkcap train examples/grpo_tiny.yaml [--field value ...]
    torchrun --nproc_per_node 2 -m training examples/grpo_tiny.yaml --rollout-engine hf [--distributed fsdp]

Each iteration: draw prompts (curriculum tiers x dynamic oversampling) → G rollouts per prompt with
the thinking budget (at the budget `</think><answer>` is forced and the sample goes on to answer) →
rewards → group-normalised advantages → drop zero-variance groups, refilling with more prompts →
clipped policy-gradient update in micro-batches (forced tokens masked out) → weights into the
rollout engine → log, checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from budget import build_profile
from training import dist
from training.learner import sharding
from training.rollout.budget_sampling import balance_budgets, budget_metrics, parse_budget_choices
from training.checkpoint import list_checkpoints, load_sharded, load_trainer_state, save_checkpoint, set_rng_state
from training.rollout.collect import RolloutContext, collect
from training.config import ConfigError, GRPOConfig
from training.config_checks import check_fits
from training.curriculum import Curriculum, DynamicSampling
from tasks.records import Record, load_records
from training.prompts import PromptEncoder
from training.heldout import HeldOut
from training.learner.policy import SequenceLogprobs, load_policy
from scoring.rewards import RewardFn, build_reward_fns
from training.rollout.samples import HFEngine, Sample, rollout_params
from training.tracking import Tracker, plot_rewards, summarize
from training.learner.update import optimizer_step, prepare
from training.rollout.vllm_engine import check_tensor_parallel
from training.rollout.weight_sync import MB, BucketStats, bucketed_weights


def resolve_model(name: str) -> str:
    if name == "tiny":
        from thinkcap.tiny_model import ensure_tiny_model

        return str(ensure_tiny_model())
    return name


def media_limits(cfg: GRPOConfig, records: list[Record]) -> dict[str, int]:
    """vLLM's limit_mm_per_prompt: the config's, else the most any record has (at least 1, so the
    engine keeps its vision encoder and a weight sync always finds it)."""
    most = {"image": max([1] + [len(r.images) for r in records]), "video": max([1] + [len(r.videos) for r in records])}
    return {"image": most["image"] if cfg.vllm_max_images is None else cfg.vllm_max_images,
            "video": most["video"] if cfg.vllm_max_videos is None else cfg.vllm_max_videos}


def make_engine(cfg: GRPOConfig, model_path: str, policy: torch.nn.Module, profile: Any, processor: Any,
                world: int, records: list[Record] | None = None, device: torch.device | None = None) -> Any:
    """The rollout engine: vLLM when asked or (auto) importable, one colocated engine per rank
    (under torchrun through vLLM's external launcher); else HF `generate`."""
    use_vllm = cfg.rollout_engine == "vllm"
    if cfg.rollout_engine == "auto":
        try:
            import vllm  # noqa: F401

            use_vllm = True
        except ImportError:
            use_vllm = False
    if use_vllm:
        from training.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model_path, seed=cfg.seed, max_model_len=cfg.vllm_max_model_len,
                          gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                          limit_mm_per_prompt=media_limits(cfg, records or []), log_level=cfg.vllm_log_level,
                          world_size=world, tensor_parallel_size=cfg.rollout_tensor_parallel_size,
                          sleep_mode=cfg.vllm_sleep_mode)
    if cfg.rollout_tensor_parallel_size > 1 or cfg.vllm_sleep_mode:
        raise ConfigError("rollout_tensor_parallel_size > 1 and vllm_sleep_mode need the vLLM engine, and vllm is "
                          "not importable here (rollout_engine auto fell back to hf)")
    eos = policy.generation_config.eos_token_id
    if (cfg.distributed == "fsdp" and world > 1) or cfg.lora_rank:
        # A sharded policy cannot `generate` rank by rank (every forward is a collective and ranks
        # stop at different lengths): rollouts run on a full copy, like a colocated vLLM engine's.
        # With LoRA the copy takes the merged weights, as vLLM does, so both engines sample from W + BA.
        policy = load_policy(model_path, cfg.dtype).to(device)
    return HFEngine(policy, profile, processor.tokenizer.pad_token_id, eos if isinstance(eos, list) else [eos])


def adapter_writer(policy: torch.nn.Module, model_path: str) -> Callable[[Path], Any]:
    from training.learner.lora import save_adapter

    return lambda out: save_adapter(policy, out, model_path)


def train(cfg: GRPOConfig, *, reward_fns: dict[str, RewardFn] | None = None, engine: Any = None,
          stop_after: int | None = None, on_step: Callable[[int, list[Sample]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) training. `reward_fns` replaces the domain → reward registry; `engine` reuses
    a rollout engine across runs (tests, benchmark); `stop_after` returns right after that step, as
    if killed; `on_step` sees each step's samples after the update (with `anytime_cuts`, each
    round's rollouts and then its answer samples that carried a gradient, `cut` set)."""
    from transformers import AutoProcessor

    # ------------------------------------------------------------------------------------------
    # Setup: processes, model, data, optimizer, curriculum, and the newest checkpoint if any
    # ------------------------------------------------------------------------------------------
    rank, world, device = dist.init()
    check_tensor_parallel(cfg.rollout_tensor_parallel_size, world)  # before any model is loaded
    if cfg.prompts_per_step % world:
        raise ConfigError(f"prompts_per_step ({cfg.prompts_per_step}) must divide evenly over {world} ranks")
    torch.manual_seed(cfg.seed)
    model_path = resolve_model(cfg.model)
    processor = AutoProcessor.from_pretrained(model_path)
    tokenizer = processor.tokenizer
    policy = load_policy(model_path, cfg.dtype).to(device).train()
    if cfg.gradient_checkpointing:
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora_rank:  # adapters in place: from here on only they require grad
        from training.learner.lora import apply_lora

        apply_lora(policy, cfg)
    profile = build_profile(tokenizer, model_type=policy.config.model_type)
    fixed = cfg.rollout_think_budget if not cfg.rollout_budget_choices.strip() else None
    for b in {fixed, *(cfg.eval_budgets() if cfg.eval_every else ())} - {None}:  # the profile's own closing length
        check_fits(cfg, b, "think budget", len(profile.closing_ids))
    reward_fns = reward_fns or build_reward_fns(cfg.min_reward, cfg.repetition_penalty_weight,
                                                cfg.language_mix_penalty_weight)
    if cfg.judge_url:
        from scoring.judge import with_judge

        reward_fns = with_judge(reward_fns, cfg.judge_url, cfg.judge_model, cfg.judge_weight, cfg.min_reward)
    try:
        records = load_records(cfg.train_data, set(reward_fns), cfg.system_prompt)
    except (ValueError, OSError) as err:
        raise ConfigError(str(err)) from err
    if len(records) < world:
        raise ConfigError(f"{cfg.train_data} has {len(records)} records for {world} ranks: every rank needs a prompt")
    reference = (SequenceLogprobs(load_policy(model_path, cfg.dtype).to(device).eval(), cfg.temperature,
                                  cfg.logprob_chunk_size) if cfg.kl_coef > 0 else None)
    # The rollout engine is built before sharding: under FSDP2 it holds its own full copy.
    engine = engine or make_engine(cfg, model_path, policy, profile, processor, world, records, device)
    model = sharding.wrap(SequenceLogprobs(policy, cfg.temperature, cfg.logprob_chunk_size), cfg, world)
    fsdp = sharding.is_fsdp(model)
    trainable = [p for p in model.parameters() if p.requires_grad]  # all, or the LoRA adapters alone
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps else 1.0)
    mix = cfg.domain_weights()
    if mix and set(mix) - {r.domain for r in records}:
        raise ConfigError(f"domain_mix names domains with no records: {sorted(set(mix) - {r.domain for r in records})}")
    curriculum = Curriculum(records, cfg.num_tiers, cfg.curriculum, cfg.tier_ema, cfg.tier_min_weight,
                            cfg.online_window, cfg.seed, mix)
    oversampling = DynamicSampling(cfg.dynamic_sampling, cfg.oversample_ema, cfg.max_oversample)
    history: list[dict[str, Any]] = []
    start = 0
    checkpoints = list_checkpoints(cfg.output_dir) if cfg.resume else []
    if checkpoints:
        state, rng = load_trainer_state(checkpoints[-1], rank)
        if fsdp:
            load_sharded(checkpoints[-1] / "dcp", model, optimizer)
        elif cfg.lora_rank:  # the base is cfg.model as loaded; policy/ holds the merged copy
            from training.learner.lora import load_adapter

            load_adapter(policy, checkpoints[-1] / "policy_adapter")
            optimizer.load_state_dict(state["optimizer"])
        else:
            policy.load_state_dict(load_policy(str(checkpoints[-1] / "policy"), cfg.dtype).state_dict())
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        curriculum.load_state_dict(state["curriculum"])
        oversampling.load_state_dict(state["oversampling"])
        history, start = state["history"], state["step"]
        set_rng_state(rng)
    sync_stats = BucketStats()  # the weight push's buckets (logged as sync/*)
    engine.load_weights(bucketed_weights(model, cfg.weight_sync_bucket_mb, sync_stats))  # the engine may hold other weights
    params = rollout_params(cfg.rollout_think_budget, cfg, profile)
    ctx = RolloutContext(cfg, engine, PromptEncoder(processor, cfg.hint()), profile, tokenizer, reward_fns,
                         params, params.think_budget, rank, world, device,
                         parse_budget_choices(cfg.rollout_budget_choices))
    tracker = Tracker(cfg.output_dir, cfg.steps, history, rank == 0, cfg.tensorboard, cfg.progress_bar,
                      cfg.wandb_project, cfg.to_dict())
    local_prompts = cfg.prompts_per_step // world
    heldout = HeldOut(cfg, engine, ctx.encode, profile, tokenizer, rank, world) if cfg.eval_every else None

    for step in range(start + 1, cfg.steps + 1):
        started = time.perf_counter()
        # Rollout (+ refill while dynamic sampling left too few informative groups) and rewards
        tier_weights = curriculum.weights()
        got = collect(ctx, step, curriculum, oversampling)
        keep = got.kept(local_prompts, cfg.dynamic_sampling)
        # Samples whose thought `form_exploration` opened are the free samples' baseline only: their
        # advantages say which form pays under their budget, but training on them would teach the
        # form's content to be bad wherever it is the wrong choice (it is the same content everywhere).
        # With `form_credit` their advantages are within their form, so they train its content.
        kept = [s for s in got.samples if s.group in keep and (s.opened is None or cfg.form_credit)]
        rollouts = [s for s in kept if not s.form_choice]  # form choices keep form_credit's scale
        balance = balance_budgets(rollouts, world, cfg.budget_balance) if cfg.budget_balance != "off" else {}
        if cfg.vllm_sleep_mode:
            engine.sleep()  # rollout memory (weights, KV cache) goes back to training until the push below

        # Loss inputs: minibatches of micro-batches with the log-probs of the policy that sampled
        # them and of the reference (KL), before any update; then one optimizer step per minibatch
        minibatches, rollout_stats = prepare(kept, cfg, step, model, reference, tokenizer.pad_token_id, world, device)
        update_stats: dict[str, list[float]] = {"loss": [], "clip_frac": [], "kl": [], "grad_norm": []}
        for _ in range(cfg.ppo_epochs):
            for mb in minibatches:
                for k, v in optimizer_step(mb, cfg, model, optimizer, world, device).items():
                    update_stats[k].append(v)
                scheduler.step()
        # Rollouts of the next step use the new policy: gathered and pushed a bucket at a time
        engine.load_weights(bucketed_weights(model, cfg.weight_sync_bucket_mb, sync_stats))

        # Log: every reward component, pass rates, lengths, forced-answer rate, clipping, entropy,
        # tiers; then checkpoint
        local = {f"train/{k}": sum(v) / len(v) for k, v in update_stats.items()} | rollout_stats
        if any(s.engine_logprobs is not None for s in kept):  # vLLM: how far its log-probs are from the trainer's
            pairs = [(m.batch, m.old_logp) for mb in minibatches for m in mb.micros if m.weight]
            # Trained tokens the engine gave a log-prob for (not a form choice's token, which was prompt
            # to it), over the micro-batches that have any
            masks = [b.loss_mask * b.engine_mask for b, _ in pairs]
            gaps = [((b.engine_logprobs - o).abs() * m).sum().item() / m.sum().item()
                    for (b, o), m in zip(pairs, masks) if m.sum() > 0]
            local["rollout/logprob_mismatch"] = sum(gaps) / max(len(gaps), 1)
        stats = [{"group": f"{rank}:{s.group}", "task": got.records[s.group].task, "reward": s.reward,
                  "response_len": len(s.response_ids), "think_len": s.num_thinking_tokens,
                  "forced": s.answer_forced, "truncated": s.truncated, "think_budget": s.think_budget,
                  "form": s.form if s.opened is None else None, "opened": s.opened}
                 for s in got.samples if s.cut is None and not s.form_choice]  # rollouts only
        every = [x for part in dist.gather(stats, world) for x in part]
        metrics = summarize(every, cfg.pass_threshold) | budget_metrics(every)
        metrics.update(dist.mean(local, world, device))
        metrics.update({f"budget/{b}/balance_weight": w for b, w in balance.items()})
        if cfg.form_credit:  # form choices trained this step (two per subgroup whose forms differed)
            metrics["form/choices_trained"] = sum(dist.all_sum([sum(s.form_choice for s in kept)], world, device))
        if cfg.anytime_cuts:  # answers from cut thoughts that carried a gradient this step
            metrics["anytime/answers_trained"] = sum(dist.all_sum([sum(s.cut is not None for s in kept)], world, device))
        metrics.update({f"curriculum/tier{t}_weight": w for t, w in enumerate(tier_weights)})
        metrics.update({"sampling/invalid_rate": 1.0 - sum(dist.all_sum([sum(got.valid)], world, device)) / got.drawn,
                        "sampling/expansion": oversampling.expansion, "sampling/rounds": float(got.rounds),
                        "sampling/groups_kept": sum(dist.all_sum([len(keep)], world, device)),
                        "train/lr": scheduler.get_last_lr()[0], "time/step_s": time.perf_counter() - started,
                        "sync/buckets": float(sync_stats.buckets), "sync/peak_bucket_mb": sync_stats.peak_bytes / MB})
        if heldout is not None and heldout.due(step):  # on the weights just pushed to the engine
            metrics.update(heldout.evaluate(step))
        history.append({"step": step, **metrics})
        tracker.log(step, metrics)
        if on_step is not None:
            on_step(step, got.samples)
        if step == cfg.steps or (cfg.save_every and step % cfg.save_every == 0):
            trainer_state = {"scheduler": scheduler.state_dict(), "curriculum": curriculum.state_dict(),
                             "oversampling": oversampling.state_dict(), "history": history, "config": cfg.to_dict()}
            if not fsdp:
                trainer_state["optimizer"] = optimizer.state_dict()
            save_checkpoint(cfg.output_dir, step, policy, model_path, trainer_state, rank, world, cfg.keep_checkpoints,
                            sharded=(model, optimizer) if fsdp else None,
                            full_state=dict(sharding.full_named_parameters(model)) if fsdp or cfg.lora_rank else None,  # merged under LoRA
                            adapter=adapter_writer(policy, model_path) if cfg.lora_rank else None, hint=cfg.hint())
        if stop_after is not None and step >= stop_after:
            break

    tracker.close()
    plot = None
    if rank == 0 and history and (stop_after is None or stop_after >= cfg.steps):
        plot = plot_rewards({Path(cfg.output_dir).name: history}, Path(cfg.output_dir) / "reward_curve.png")
    final = list_checkpoints(cfg.output_dir)
    dist.barrier(world)
    return {"history": history, "engine": engine, "policy": policy, "model": model, "reward_curve": plot,
            "checkpoint": final[-1] if final else None}
