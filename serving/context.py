"""The per-app state every route reads: settings, engine backend, think profile, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from budget import ThinkProfile, build_profile
from serving.backend import Backend
from serving.metrics import ServerMetrics
from serving.settings import ServerSettings


@dataclass
class ServerContext:
    settings: ServerSettings
    backend: Backend
    profile: ThinkProfile
    metrics: ServerMetrics
    ready: bool = False

    @classmethod
    def create(cls, settings: ServerSettings, backend: Backend) -> ServerContext:
        # Same tokenizer and model type as the engine's logits processor: both sides agree on ids.
        profile = build_profile(backend.tokenizer, model_type=backend.model_type)
        return cls(settings, backend, profile, ServerMetrics(backend.num_unfinished_requests))


def get_context(request: Request) -> ServerContext:
    return request.app.state.thinkcap
