"""thinkcap's series on the real server's /metrics (beside vLLM's): a scrape before and after a set
of requests moves each series by exactly what those requests' `thinkcap` objects say."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.test_controls_server import USER, post

pytestmark = pytest.mark.engine


def scrape(server) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert "vllm:" in text  # vLLM's own series are still there
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) if fam.name.startswith("thinkcap")
            for s in fam.samples}


def stream_info(server, body: dict) -> dict:
    info = None
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", timeout=120,
                      json={"model": server.model, "stream": True, **body},
                      headers={"Authorization": f"Bearer {server.api_key}"}) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                for ch in json.loads(line[6:]).get("choices", []):
                    info = ch.get("thinkcap") or info
    assert info is not None
    return info


def test_series_move_by_exactly_what_was_sent(server):
    before = scrape(server)
    base = {"messages": USER, "max_tokens": 30, "temperature": 0}
    sent: list[tuple[int | None, int, dict]] = []  # (requested budget, grace, thinkcap object) per choice
    for body in (dict(think_budget=6, min_think_tokens=6, think_budget_grace=4),
                 dict(think_budget=5, think_budget_action="truncate"),
                 dict(think_budget=8, n=2, temperature=1.0, seed=1),
                 dict(think_budget=None, max_tokens=12)):
        resp = post(server, "/v1/chat/completions", {**base, **body}).json()
        sent += [(body["think_budget"], body.get("think_budget_grace", 0), c["thinkcap"]) for c in resp["choices"]]
    msg = post(server, "/v1/messages", {**base, "thinking": {"type": "enabled", "budget_tokens": 7}}).json()
    sent.append((7, 0, msg["thinkcap"]))
    sent.append((9, 0, stream_info(server, {**base, "think_budget": 9})))  # streamed: observed once
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    budgeted = [(r, i) for r, _, i in sent if r is not None]
    graced = [i for _, g, i in sent if g > 0]
    assert moved("thinkcap_thinking_tokens_count") == len(sent) == 7
    assert moved("thinkcap_thinking_tokens_sum") == sum(i["num_thinking_tokens"] for _, _, i in sent)
    assert moved("thinkcap_requested_budget_count") == len(budgeted) == 6
    assert moved("thinkcap_requested_budget_sum") == sum(r for r, _ in budgeted)
    # an unlimited request still has an effective budget: what max_tokens leaves (the fit rule)
    effective = [i["think_budget"] for _, _, i in sent if i["think_budget"] is not None]
    assert moved("thinkcap_effective_budget_count") == len(effective) == 7
    assert moved("thinkcap_effective_budget_sum") == sum(effective)
    assert moved("thinkcap_grace_tokens_count") == len(graced) == 1
    assert moved("thinkcap_grace_tokens_sum") == sum(max(0, i["num_thinking_tokens"] - i["think_budget"]) for i in graced)
    reasons = Counter(i["close_reason"] or "none" for _, _, i in sent)
    assert reasons["truncated"] == 1
    for reason, count in reasons.items():
        assert moved("thinkcap_closes_total", close_reason=reason) == count
