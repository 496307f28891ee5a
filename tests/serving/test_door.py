"""The door: every body that reaches vLLM's routes passed thinkcap's limits and media gate, on
every route and under every mount prefix (fast: a FastAPI app stands in for vLLM's, the real
middleware in front of it, requests through Starlette's test client).

Before: with `--root-path /llm` the middleware matched `scope["path"]` exactly and saw nothing under
the prefix; `/invocations`, `/v1/chat/completions/batch`, `/tokenize` and `/v1/messages/count_tokens`
were never gated; untyped `{"image_url": ...}` parts and `image_pil` strings reached vLLM's fetcher.
The engine-level twin of these cases is in test_security_server.py."""

from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from serving.errors import APIError
from serving.media_scan import find_media
from serving.middleware import BudgetMiddleware
from serving.settings import ServerSettings
from tests.serving.security_helpers import png_bytes

LOOPBACK = "http://127.0.0.1:9/x.png"  # refused before any connection: the gate resolves, then refuses
ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages", "/v1/chat/completions/batch",
          "/invocations", "/tokenize", "/v1/messages/count_tokens", "/v1/chat/completions/render", "/some/future/route"]


def _app(root_path: str = "") -> tuple[FastAPI, list[dict]]:
    """A stand-in for vLLM's app: every route echoes the body it was handed."""
    app = FastAPI(root_path=root_path)
    seen: list[dict] = []

    async def echo(request: Request):
        body = await request.json()
        seen.append(body)
        return body

    for route in ROUTES:
        app.add_api_route(route, echo, methods=["POST"])
    app.add_middleware(BudgetMiddleware)
    app.state.thinkcap = None  # no think profile: the door still stands
    app.state.thinkcap_settings = ServerSettings()
    return app, seen


def _chat_image(url: str) -> dict:
    return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}


@pytest.mark.parametrize("root_path", ["", "/llm"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_loopback_image_is_refused_on_every_route_and_mount(route, root_path):
    app, seen = _app(root_path)
    client = TestClient(app)
    for path in {route, root_path + route}:  # with a root path, vLLM answers both spellings
        r = client.post(path, json=_chat_image(LOOPBACK))
        assert r.status_code == 400, (path, r.text)
        assert "loopback" in r.json()["error"]["message"] and r.json()["error"]["param"] == "messages.0.content.0"
    assert seen == []


@pytest.mark.parametrize("part", [
    {"image_url": {"url": LOOPBACK}},                      # untyped part (vLLM's fallback)
    {"image_url": LOOPBACK},
    {"type": "input_image", "image_url": LOOPBACK, "detail": "auto"},
    {"type": "video_url", "video_url": LOOPBACK, "uuid": "abc"},
])
def test_every_spelling_of_a_media_part_is_gated(part):
    app, seen = _app("/llm")
    r = TestClient(app).post("/llm/v1/chat/completions", json={"messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400 and "loopback" in r.json()["error"]["message"], r.text
    assert seen == []


@pytest.mark.parametrize(("part", "match"), [
    ({"type": "image_pil", "image_pil": LOOPBACK}, "image_pil"),   # the HF processor fetches this string
    ({"type": "audio_url", "audio_url": {"url": LOOPBACK}}, "audio_url"),
    ({"type": "input_file", "file_url": LOOPBACK}, "input_file"),
    ({"image_pil": LOOPBACK}, "needs a 'type'"),
])
def test_parts_the_gate_cannot_check_are_refused(part, match):
    app, seen = _app()
    r = TestClient(app).post("/tokenize", json={"messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400 and match in r.json()["error"]["message"], r.text
    assert seen == []


def test_batch_conversations_and_nested_tool_results_are_scanned():
    body = {"messages": [[{"role": "user", "content": "hi"}],
                         [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}]]}
    assert [r.param for r in find_media(body)] == ["messages.1.0.content.0"]
    anthropic = {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}]}
    (ref,) = find_media(anthropic)
    assert ref.param == "messages.0.content.0.content.0" and ref.holder["url"] == "data:image/png;base64,AAAA"


def test_schemas_and_text_are_not_media():
    """A JSON schema may have a property named image_url; text parts and tool definitions pass."""
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "image_url"}]}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {
                "type": "object", "properties": {"image_url": {"type": "string"}}, "content": [{"image_url": 1}]}}},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"content": [{"image_pil": 1}]}}}]}
    assert find_media(body) == []


def test_good_media_is_rewritten_to_a_data_url_under_the_prefix():
    url = "data:image/png;base64," + base64.b64encode(png_bytes((4, 4))).decode()
    app, seen = _app("/llm")
    r = TestClient(app).post("/llm/tokenize", json={"messages": [{"role": "user", "content": [{"image_url": url}]}]})
    assert r.status_code == 200, r.text
    assert seen[0]["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_budget_without_a_think_profile_is_refused_not_ignored():
    app, seen = _app()
    r = TestClient(app).post("/v1/chat/completions", json={"messages": [], "think_budget": 8})
    assert r.status_code == 400 and r.json()["error"]["param"] == "think_budget"
    r = TestClient(app).post("/v1/chat/completions", json={"messages": []})
    assert r.status_code == 200 and seen == [{"messages": []}]


def test_limits_apply_on_every_route():
    app, _ = _app("/llm")
    app.state.thinkcap_settings = ServerSettings(limits={"max_messages": 2})
    r = TestClient(app).post("/llm/tokenize", json={"messages": [{"role": "user", "content": "x"}] * 3})
    assert r.status_code == 400 and "at most 2" in r.json()["error"]["message"]


def test_find_media_error_names_the_part():
    with pytest.raises(APIError) as info:
        find_media({"input": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "zzz"}]}]})
    assert info.value.param == "input.0.content.1"
