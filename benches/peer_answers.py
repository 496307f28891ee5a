"""The peer difference users meet: when the thinking budget runs out, is there still an answer?

Each server gets the same distinct short questions (greedy), its own budget field and
`return_token_ids`; the output ids are split with thinkcap's id-level splitter (`budget`: the one
the server and training use) against the model's think profile, so both servers are judged by the
same code. Two settings: max_tokens = budget + 24 (room after the budget) and max_tokens = budget
(the budget is the whole allowance, as a client that sets both to one number does).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

ROOM = 24


def budget_body(server: str, budget: int | None) -> dict[str, Any]:
    """The budget field each server reads: thinkcap's `think_budget`, vLLM's `thinking_token_budget`."""
    if budget is None:
        return {}
    return {"think_budget": budget} if server == "thinkcap" else {"thinking_token_budget": budget}


def questions(n: int) -> list[str]:
    return [f"Question {i}: what is {i} + {i * 7 % 13}? Think step by step." for i in range(n)]


async def _ask(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(url, json=body, timeout=600)
    if resp.status_code != 200:
        raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


async def _ask_all(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        return await asyncio.gather(*(_ask(client, url, b) for b in bodies))


def split(profile: Any, tokenizer: Any, prompt_ids: list[int], output_ids: list[int]) -> tuple[int, bool, bool]:
    """(thinking tokens, thinking closed, non-empty answer) from ids."""
    from budget import BudgetParams, replay, split_output

    seg = split_output(replay(profile, BudgetParams(), prompt_ids, output_ids), output_ids)
    answer = tokenizer.decode(seg.answer_ids, skip_special_tokens=True).strip()
    return seg.num_thinking_tokens, seg.thinking_closed, bool(answer)


def answer_share(cfg: Any, server: Any, served: str) -> list[dict[str, Any]]:
    from transformers import AutoTokenizer

    from budget import build_profile

    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    profile = build_profile(tokenizer, model_type="glm4v")
    out = []
    for max_tokens, label in ((cfg.peer_budget + ROOM, f"budget {cfg.peer_budget}, max_tokens +{ROOM}"),
                              (cfg.peer_budget, f"budget {cfg.peer_budget} = max_tokens")):
        bodies = [{"model": served, "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens,
                   "temperature": 0, "return_token_ids": True, **budget_body(server.name, cfg.peer_budget)}
                  for q in questions(cfg.peer_requests)]
        replies = asyncio.run(_ask_all(f"{server.base_url}/v1/chat/completions", bodies))
        rows = [split(profile, tokenizer, r["prompt_token_ids"], r["choices"][0]["token_ids"]) for r in replies]
        answered = sum(a for _, _, a in rows)
        out.append({"label": label, "max_tokens": max_tokens, "n": len(rows), "answered": answered,
                    "share": answered / len(rows), "closed": sum(c for _, c, _ in rows),
                    "mean_thinking": sum(t for t, _, _ in rows) / len(rows),
                    "reached_budget": sum(t >= cfg.peer_budget for t, _, _ in rows)})
    return out
