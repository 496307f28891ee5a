"""Prometheus metrics of the thinkcap server (`GET /metrics`).

One registry per app, so several apps in one process (tests) never collide. The engine gauge is
read at scrape time from the engine itself: it is how a client (or a test) sees that a
disconnected stream really aborted its engine request. vLLM's own engine metrics (`vllm:*`, in
prometheus_client's global registry) are served alongside, as `vllm serve` would.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest,
)

from serving.responses import ChoiceThinkcap

disable_created_metrics()  # the *_created series only double the output; nobody graphs them

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ServerMetrics:
    def __init__(self, engine_unfinished: Callable[[], int]):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("thinkcap_requests", "chat completion requests by outcome", ["outcome"], registry=r)
        self.latency = Histogram("thinkcap_request_latency_seconds", "time from request to last byte",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("thinkcap_prompt_tokens", "prompt tokens processed", registry=r)
        self.completion_tokens = Counter("thinkcap_completion_tokens", "tokens generated", registry=r)
        self.thinking_tokens = Counter("thinkcap_thinking_tokens", "tokens generated inside <think>", registry=r)
        self.forced_answers = Counter("thinkcap_forced_answers", "choices whose answer the budget forced", registry=r)
        self.in_flight = Gauge("thinkcap_requests_in_flight", "chat requests being served", registry=r)
        self.engine_unfinished = Gauge("thinkcap_engine_unfinished_requests",
                                       "requests the engine holds (running or waiting)", registry=r)
        self.engine_unfinished.set_function(engine_unfinished)

    def observe_choice(self, info: ChoiceThinkcap, completion_tokens: int) -> None:
        self.completion_tokens.inc(completion_tokens)
        self.thinking_tokens.inc(info.num_thinking_tokens)
        if info.answer_forced:
            self.forced_answers.inc()

    def observe_request(self, outcome: str, seconds: float | None = None) -> None:
        """outcome: "ok", "aborted", "error", or the HTTP status of a rejected request."""
        self.requests.labels(outcome=outcome).inc()
        if seconds is not None:
            self.latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(REGISTRY)
