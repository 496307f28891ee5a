"""Rollouts: prompts in, scored samples out, through the same budget mechanism as the server.

samples.py         Completion / Sample and their outcome, the rollout budget and params, the HF engine
vllm_engine.py     the colocated vLLM engine
hf_processor.py    the transformers LogitsProcessor over budget.ThinkState
weight_sync.py     policy weights → the vLLM engine
budget_sampling.py budgets drawn per prompt (budget-aware GRPO) and their hint
collect.py         one step's rollouts: generate, answer at cut points, reward
"""
