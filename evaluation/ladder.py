"""`thinkcap eval --ladder`: every budget of the sweep answered from ONE thought per (item, sample).

The thought is generated once, at the sweep's largest budget (unlimited if the sweep has it). For a
smaller budget b that cut the thought, its first b tokens are sent back as the assistant's unfinished
reply (`<think>` + the cut text, `continue_final_message`) with `think_budget: 0`: the server sees
thinking open in the prompt and forces its closing sequence at once, as the engine does when a
budget runs out, and the model answers. A budget that holds the whole thought reuses the thought's
own answer. Tokens before a cut do not depend on where the cut falls (greedy, and sampling with a
seed: the draws before the cut are the same), so this is the per-budget sweep's answer at a fraction
of the generated tokens: one thought instead of one per budget.

Two things make it differ from the sweep, and the closing note of a run should say so:
- the cut text is re-tokenized by the server's chat template; where detokenize → tokenize is not the
  identity (rare byte-level pieces) the prompt differs from the sweep's by those tokens;
- with a budget hint (`thinkcap serve --budget-hint`) the sweep's thoughts differ per budget (the
  model is told each budget), while the ladder cuts one thought written under the largest budget's
  hint: then the ladder measures "cut an unhinted long thought", not the served curve.

The pure plan (which budget is cut where) is `budget.cuts`, shared with the demo's Compare.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai

from budget.cuts import CONTINUE, cut_messages, plan_cuts, thought_budget
from evaluation.budgets import Budget, budget_body
from evaluation.client import RequestRefused
from evaluation.dataset import EvalItem
from evaluation.runner import RUN_KEYS, RunConfig, request_for
from scoring.score import score_response


class _Server:
    """The HTTP side: the thought with its token ids, tokenize/detokenize, the answer at a cut."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key, timeout=cfg.timeout_s,
                                         max_retries=1)
        self.root = cfg.base_url.rstrip("/").removesuffix("/v1")  # vLLM serves /tokenize at the root
        self.http = httpx.AsyncClient(timeout=cfg.timeout_s, headers={"Authorization": f"Bearer {cfg.api_key}"})
        self.close_id: int | None = None
        self.generated = 0  # completion tokens of every request: the cost the ladder saves

    async def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(f"{self.root}/{route}", json={"model": self.cfg.model, **body})
        if r.status_code >= 400:
            raise RequestRefused(f"/{route} answered {r.status_code}: {r.text[:200]}; --ladder needs vLLM's "
                                 "/tokenize and /detokenize")
        return r.json()

    async def chat(self, request: dict[str, Any]) -> Any:
        try:
            resp = await self.client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            if 400 <= exc.status_code < 500:
                raise RequestRefused(f"the server refused the request ({exc.status_code}): {exc.message}") from None
            raise
        self.generated += resp.usage.completion_tokens if resp.usage else 0
        return resp

    async def thought_ids(self, ids: list[int], num_thinking: int) -> list[int]:
        """The thought's own ids among the output ids: they end where the think-close id first is."""
        if self.close_id is None:
            (self.close_id,) = (await self._post("tokenize", {"prompt": "</think>", "add_special_tokens": False}))["tokens"]
        end = ids.index(self.close_id) if self.close_id in ids else len(ids)
        return ids[max(0, end - num_thinking):end]

    async def detokenize(self, ids: list[int]) -> str:
        return (await self._post("detokenize", {"tokens": ids}))["prompt"] if ids else ""

    async def close(self) -> None:
        await self.client.close()
        await self.http.aclose()


def _row(cfg: RunConfig, item: EvalItem, budget: Budget, sample: int, *, reasoning: str, content: str,
         thinking: int, forced: bool, finish: str | None, latency: float, cut: bool) -> dict[str, Any]:
    return {"item_id": item.id, "domain": item.domain, "budget": budget.label, "sample": sample,
            **{k: getattr(cfg, k) for k in RUN_KEYS}, "reasoning": reasoning, "content": content,
            "finish_reason": finish, "thinking_tokens": thinking, "thinking_tokens_source": "thinkcap",
            "answer_forced": forced, "latency_s": latency, "ladder_cut": cut,
            **score_response(reasoning, content, item.domain, item.answer)}


async def _ladder_one(server: _Server, cfg: RunConfig, item: EvalItem, budgets: list[Budget],
                      sample: int) -> list[dict[str, Any]]:
    values = [b.value for b in budgets]
    top = budgets[values.index(thought_budget(values))]
    request = request_for(cfg, item, top, sample)
    request["extra_body"] = {**request["extra_body"], "return_token_ids": True}
    start = time.perf_counter()
    resp = await server.chat(request)
    choice = resp.choices[0]
    extra, message = choice.model_extra or {}, choice.message.model_extra or {}
    info = extra.get("thinkcap") or {}
    if "num_thinking_tokens" not in info:
        raise RequestRefused("--ladder needs thinkcap serve: the response has no thinkcap object")
    thinking, forced = info["num_thinking_tokens"], bool(info.get("answer_forced"))
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    whole = {"reasoning": reasoning, "content": choice.message.content or "", "thinking": thinking, "forced": forced,
             "finish": choice.finish_reason, "latency": time.perf_counter() - start}
    ids = await server.thought_ids(list(extra.get("token_ids") or []), thinking)
    rows = []
    for budget, plan in zip(budgets, plan_cuts(values, thinking, forced)):
        if not plan.cut:
            rows.append(_row(cfg, item, budget, sample, cut=False, **whole))
            continue
        cut_text = await server.detokenize(ids[:plan.tokens])
        started = time.perf_counter()
        answer = await server.chat({
            "model": cfg.model, "temperature": cfg.temperature,
            "messages": cut_messages(item.messages, cut_text, info.get("budget_hint")),
            # the room the sweep's answer has at this budget: max_tokens less the thought it spent
            "max_tokens": max(1, cfg.max_tokens - plan.tokens),
            "extra_body": {**cfg.extra_body, **CONTINUE, **budget_body("think_budget", Budget("0", 0)),
                           **({"seed": cfg.seed + sample} if cfg.seed is not None else {})}})
        rows.append(_row(cfg, item, budget, sample, reasoning=cut_text, content=answer.choices[0].message.content or "",
                         thinking=plan.tokens, forced=True, finish=answer.choices[0].finish_reason,
                         latency=time.perf_counter() - started, cut=True))
    return rows


async def run_ladder(cfg: RunConfig, items: list[EvalItem], budgets: list[Budget]) -> tuple[list[dict[str, Any]], int]:
    """Every (item, budget, sample) row from one thought per (item, sample); and the tokens generated."""
    if cfg.budget_param != "think_budget" or any(not isinstance(b.value, int | None) for b in budgets):
        raise ValueError("--ladder cuts at token counts: use --budget-param think_budget and numeric budgets")
    server = _Server(cfg)
    if cfg.model is None:
        cfg.model = (await server.client.models.list()).data[0].id
    jobs = [(item, s) for item in items for s in range(cfg.samples)]
    rows: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(cfg.concurrency)

    async def one(item: EvalItem, sample: int) -> None:
        async with gate:
            rows.extend(await _ladder_one(server, cfg, item, budgets, sample))

    try:
        async with asyncio.TaskGroup() as group:
            for item, sample in jobs:
                group.create_task(one(item, sample))
    except* RequestRefused as refused:
        raise refused.exceptions[0] from None
    finally:
        await server.close()
    return rows, server.generated
