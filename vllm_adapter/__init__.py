"""vLLM adapter pieces that both `serving/` and `training/` use (training never imports the HTTP layer).

processor      — the think-budget logits processor (V1 `LogitsProcessor` contract)
budget_rows    — its sparse per-row bookkeeping (pure Python)
engine_env     — what an engine needs so the processor runs in it exactly once
reasoning_parser — the GLM-4.1V reasoning parser (`--reasoning-parser glm41v`)
"""
