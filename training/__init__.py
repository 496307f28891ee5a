"""GRPO training with forced answering (the GLM-4.1V-Thinking RL recipe).

train.py        the RL loop, top to bottom (rollout / rewards / loss / update / log)
config.py       GRPOConfig: every knob, YAML + command-line overrides
data.py         JSONL records → prompts for vLLM and for the policy
rollout.py      samples, loss masks of forced tokens, the HF-generate engine
vllm_engine.py  the colocated vLLM engine and its weight sync
policy.py       per-token log-probs of the policy
grpo.py         advantages, clipped surrogate, loss aggregation, KL
rewards.py      format gate, style penalties, reward registry; verifiers.py: accuracy per domain
curriculum.py   RLCS tiers and dynamic sampling; label_difficulty.py: offline tiers from pass@k
checkpoint.py   exact-resume checkpoints with a servable HF policy folder
tracking.py     progress bar, TensorBoard, metrics.jsonl, reward-curve PNG
dist.py         torchrun helpers; synthetic.py: the synthetic dataset; sft.py: format warm-up
bench_learning.py  `thinkcap bench learning`
"""
