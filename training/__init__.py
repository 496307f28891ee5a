"""GRPO training with forced answering (the GLM-4.1V-Thinking RL recipe). Rewards come from
scoring/, records from tasks/; training never imports evaluation/ or benches/.

train.py             the RL loop, top to bottom (rollout / rewards / loss / update / log)
config.py            GRPOConfig: every knob; config_load.py: YAML + flags, ConfigError;
                     config_checks.py: checks that span fields (LoRA, eval, the fit rule)
prompts.py           records → prompts for the engine (text + media) and the policy (ids + tensors)
rollout/             samples and their budget, the HF and vLLM engines, weight sync, drawn budgets,
                     collect (one step's rollouts), generate.py (generate_and_score, the seed rule)
learner/             policy log-probs, GRPO loss and advantages, the update, FSDP2 sharding, LoRA
curriculum.py        RLCS tiers and dynamic sampling; label_difficulty.py: offline tiers from pass@k
heldout.py           held-out evaluation on the rollout engine every eval_every steps
sft.py               supervised warm-up (cold start, optionally hinted); sft_config.py: SFTConfig
checkpoint.py        exact-resume checkpoints with a servable HF policy folder
tracking.py          progress bar, TensorBoard, metrics.jsonl, reward-curve PNG
dist.py              torchrun helpers
"""
