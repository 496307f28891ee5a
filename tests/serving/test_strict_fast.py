"""The strict door without an engine (issue 19.4): a FastAPI app stands in for vLLM's, with the
real middleware and the endpoint plugin's error handler. The real-server twin, side by side with
vLLM's server, is test_strict_door.py."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from serving.plugin import ThinkcapEndpointPlugin
from serving.settings import ServerSettings
from serving.strict import CHAT_ROLES, numeric_fields

LOOPBACK_IMAGE = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}]}]}


def _client() -> tuple[TestClient, list[bytes]]:
    app = FastAPI(root_path="/llm")
    seen: list[bytes] = []

    async def echo(request: Request):
        seen.append(await request.body())
        return {"ok": True}

    for route in ("/v1/chat/completions", "/v1/completions", "/v1/audio/transcriptions"):
        app.add_api_route(route, echo, methods=["POST"])
    ThinkcapEndpointPlugin().attach_router(app)
    app.state.thinkcap = None
    app.state.thinkcap_settings = ServerSettings()
    return TestClient(app), seen


@pytest.mark.parametrize(("raw", "param"), [
    (b'{"messages": [], "temperature": NaN}', "temperature"),
    (b'{"messages": [], "max_tokens": -Infinity}', "max_tokens"),
    (b'{"messages": [], "max_tokens": 1e400}', "max_tokens"),
    (b'{"messages": [], "stop": ["a"], "logit_bias": {"7": [1, NaN]}}', "logit_bias.7.1"),
    (b'{"messages": [], "max_tokens": true}', "max_tokens"),
    (b'{"messages": [], "top_p": false}', "top_p"),
    (b'{"messages": [{"role": "wizard", "content": "hi"}]}', "messages.0.role"),
    (b'{"messages": [], "structured_outputs": true}', "structured_outputs"),  # vLLM: 500 (schema fuzz)
    (b'{"messages": [{"role": "user", "content": "\xff"}]}', "body"),
    (b'{"messages": [', "body"),
])
def test_loose_bodies_are_refused_naming_the_field(raw, param):
    client, seen = _client()
    for path in ("/v1/chat/completions", "/llm/v1/chat/completions"):
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert seen == []


def test_empty_assistant_message_in_responses_input_is_refused():
    """vLLM reads `content[0]` of an assistant message item unchecked (500, found by the schema fuzz)."""
    client, seen = _client()
    item = {"type": "message", "role": "assistant", "content": [], "id": "", "status": "completed"}
    r = client.post("/v1/responses", json={"input": [{"role": "user", "content": "hi"}, item]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input.1.content", r.text
    assert seen == []


def test_what_stays_allowed():
    client, seen = _client()
    ok = [b'{"messages": [{"role": "developer", "content": "x"}, {"role": "tool", "content": "3"}], "temperature": 0}',
          b'{"prompt": "hi", "logprobs": 2, "echo": true, "seed": 12345678901234567890123}',  # vLLM names a huge seed
          b'{"messages": [], "max_tokens": 1e308}']  # finite: vLLM's model judges it
    for raw in ok:
        path = "/v1/completions" if b"prompt" in raw else "/v1/chat/completions"
        assert client.post(path, content=raw, headers={"content-type": "application/json"}).status_code == 200
    assert len(seen) == 3


def test_a_form_upload_passes_and_a_json_body_is_gated_whatever_its_declared_type():
    client, seen = _client()
    r = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"\xff\xfe\x00RIFF")})
    assert r.status_code == 200 and len(seen) == 1  # not JSON, not declared JSON: vLLM's to read
    import json
    r = client.post("/v1/chat/completions", content=json.dumps(LOOPBACK_IMAGE), headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "loopback" in r.json()["error"]["message"]
    assert len(seen) == 1


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/chat/completions", 405), ("GET", "/nope", 404), ("POST", "/llm/v1/nope", 404)])
def test_router_errors_are_openai_errors(method, path, status):
    client, _ = _client()
    r = client.request(method, path)
    assert r.status_code == status
    assert r.json() == {"error": {"message": r.json()["error"]["message"], "type": r.json()["error"]["type"],
                                  "param": None, "code": status}}


def test_number_fields_come_from_vllms_models():
    assert {"max_tokens", "temperature", "top_p", "seed", "n"} <= numeric_fields("chat")
    assert "logprobs" not in numeric_fields("chat")  # a boolean there, a number on completions
    assert "logprobs" in numeric_fields("completion")
    assert {"max_output_tokens"} <= numeric_fields("responses") and {"max_tokens"} <= numeric_fields("messages")
    assert "assistant" in CHAT_ROLES and "wizard" not in CHAT_ROLES
