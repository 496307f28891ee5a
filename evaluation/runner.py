"""The sweep: every item × budget × sample sent with bounded concurrency, each response scored and
appended to `responses.jsonl` as it lands, so a killed run loses nothing and a rerun only sends what
is missing (failed requests are retried; a finished response is never sent again).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from tqdm import tqdm

from evaluation.budgets import BUDGET_PARAMS, Budget, budget_body
from evaluation.client import RequestRefused, stream_chat
from evaluation.dataset import EvalItem
from scoring.score import score_response

# Settings that change what a response means: a resumed run must match them.
# (Rows written before grace/budget_message existed read as None: the server's default, as they were.)
RUN_KEYS = ("model", "budget_param", "max_tokens", "temperature", "top_p", "seed", "grace", "budget_message")
CONTROL_FIELDS = {"grace": "think_budget_grace", "budget_message": "think_budget_message"}  # thinkcap's fields


@dataclass
class RunConfig:
    base_url: str
    model: str | None = None  # None: the first model the server lists
    api_key: str = "EMPTY"
    budget_param: str = "think_budget"
    samples: int = 1
    concurrency: int = 8
    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None  # per request seed+sample: the same draw at every budget
    timeout_s: float = 600.0
    grace: int | None = None  # think_budget_grace on every request; None: not sent (the server's default)
    budget_message: str | None = None  # think_budget_message on every request; None: not sent
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget_param not in BUDGET_PARAMS:
            raise ValueError(f"--budget-param {self.budget_param!r}: choose one of {', '.join(BUDGET_PARAMS)}")
        for name in ("samples", "concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(f"--samples {self.samples} with --temperature 0 would repeat one greedy answer; "
                             "set --temperature > 0 for pass@k")
        if self.timeout_s <= 0:
            raise ValueError(f"--timeout must be > 0, got {self.timeout_s}")
        if self.grace is not None and self.grace < 0:
            raise ValueError(f"--grace must be >= 0, got {self.grace}")
        if self.budget_message is not None and not self.budget_message.strip():
            raise ValueError("--budget-message must be non-empty text")
        clash = set(self.extra_body) & {*BUDGET_PARAMS, *CONTROL_FIELDS.values(), "thinking_budget_message",
                                        "model", "messages", "max_tokens", "temperature", "stream"}
        if clash:
            raise ValueError(f"--extra-body sets {sorted(clash)}, which have their own options")


def job_key(item_id: str, budget: str, sample: int) -> tuple[str, str, int]:
    return item_id, budget, sample


def load_done(path: Path, cfg: RunConfig) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Finished responses of an earlier run into the same file (the last row of a key wins).
    Refuses a file written with other settings: mixing them would corrupt every number."""
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if not path.is_file():
        return done
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill: that request is simply redone
            continue
        for key in RUN_KEYS:
            if row.get(key) != getattr(cfg, key):
                raise ValueError(f"{path}:{lineno} was written with {key}={row.get(key)!r}, this run has "
                                 f"{getattr(cfg, key)!r}; use another --out or the same settings")
        k = job_key(row["item_id"], row["budget"], row["sample"])
        if row.get("error"):
            done.pop(k, None)
        else:
            done[k] = row
    return done


def control_body(cfg: RunConfig) -> dict[str, Any]:
    """The budget controls the run was started with, as thinkcap's request fields."""
    return {field: getattr(cfg, key) for key, field in CONTROL_FIELDS.items() if getattr(cfg, key) is not None}


def request_for(cfg: RunConfig, item: EvalItem, budget: Budget, sample: int) -> dict[str, Any]:
    body = {**cfg.extra_body, **budget_body(cfg.budget_param, budget), **control_body(cfg)}
    if cfg.seed is not None:
        body["seed"] = cfg.seed + sample
    request: dict[str, Any] = {"model": cfg.model, "messages": item.messages, "max_tokens": cfg.max_tokens,
                               "temperature": cfg.temperature, "extra_body": body}
    if cfg.top_p is not None:
        request["top_p"] = cfg.top_p
    return request


async def _one(client: openai.AsyncOpenAI, cfg: RunConfig, item: EvalItem, budget: Budget, sample: int) -> dict[str, Any]:
    row: dict[str, Any] = {"item_id": item.id, "domain": item.domain, "budget": budget.label, "sample": sample,
                           **{k: getattr(cfg, k) for k in RUN_KEYS}}
    try:
        reply = await stream_chat(client, request_for(cfg, item, budget, sample))
    except RequestRefused:
        raise
    except (openai.OpenAIError, httpx.HTTPError, OSError) as exc:  # down, 5xx, cut stream: retried on rerun
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    return {**row, **asdict(reply), **score_response(reply.reasoning, reply.content, item.domain, item.answer)}


async def _resolve_model(client: openai.AsyncOpenAI, cfg: RunConfig) -> None:
    if cfg.model is None:
        models = (await client.models.list()).data
        if not models:
            raise RequestRefused(f"the server at {cfg.base_url} lists no models; pass --model")
        cfg.model = models[0].id


async def run_sweep(cfg: RunConfig, items: list[EvalItem], budgets: list[Budget], out: Path,
                    progress: bool = True) -> list[dict[str, Any]]:
    """Send what `out` lacks, append each response to it. Returns every finished row plus this
    run's failed requests (rows with `error`, counted in the error rate and retried next time)."""
    client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key, timeout=cfg.timeout_s, max_retries=1)
    await _resolve_model(client, cfg)
    done = load_done(out, cfg)
    todo = [(item, b, s) for b in budgets for item in items for s in range(cfg.samples)
            if job_key(item.id, b.label, s) not in done]
    rows, failed = list(done.values()), []
    scored = [r["accuracy"] for r in rows]
    queue: asyncio.Queue = asyncio.Queue()
    for job in todo:
        queue.put_nowait(job)
    bar = tqdm(total=len(todo), disable=not progress, desc="eval", unit="req")
    out.parent.mkdir(parents=True, exist_ok=True)

    async def worker(f) -> None:
        while not queue.empty():
            row = await _one(client, cfg, *queue.get_nowait())
            f.write(json.dumps(row) + "\n")
            f.flush()
            if row.get("error"):
                failed.append(row)
            else:
                rows.append(row)
                scored.append(row["accuracy"])
            bar.update(1)
            bar.set_postfix(acc=f"{sum(scored) / max(1, len(scored)):.3f}", errors=bar.n - (len(scored) - len(done)))

    try:
        with out.open("a") as f:
            if out.stat().st_size and not out.read_bytes().endswith(b"\n"):
                f.write("\n")  # a kill cut the last line: start ours on a fresh one
            # A task group cancels the other workers at the first refusal, before the file closes.
            async with asyncio.TaskGroup() as group:
                for _ in range(min(cfg.concurrency, max(1, len(todo)))):
                    group.create_task(worker(f))
    except* RequestRefused as refused:
        raise refused.exceptions[0] from None
    finally:
        bar.close()
        await client.close()
    return rows + failed
