"""vLLM adapter pieces that both `serving/` and `training/` use (training never imports the HTTP layer).

processor      — the think-budget logits processor (entry class; V1 `LogitsProcessor` contract)
processor_v2   — its Model Runner V2 path (per-slot state, `budget_slots`, the device-side EOS watch)
processor_common — what both paths share (owner registry, profile, admission checks, the plan write)
budget_rows    — its sparse per-row bookkeeping (pure Python)
engine_env     — what an engine needs so the processor runs in it exactly once
reasoning_parser — the GLM-4.1V reasoning parser (`--reasoning-parser glm41v`)
"""
