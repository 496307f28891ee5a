"""The learner: what turns scored samples into a weight update.

policy.py    per-token log-probs of the policy (vision tower included)
grpo.py      advantages, clipped surrogate, loss aggregation, KL
update.py    one optimiser step over micro-batches
sharding.py  FSDP2 wrapping and full state dicts under torchrun
lora.py      LoRA adapters and merging them for the engine
"""
