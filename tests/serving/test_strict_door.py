"""Issue 19.4: what vLLM's server lets through loosely, refused at thinkcap's door with a 400 that
names the field, and every error as the OpenAI error object; the same request against vLLM's own
server alongside, to show the difference.

Before: thinkcap parsed bodies with Python's json (NaN, Infinity and 1e400 accepted) and
re-serialised them with orjson, which writes non-finite floats as `null`: `temperature: NaN` and
`max_tokens: Infinity` were served with 200 where vLLM's own server refuses them; `max_tokens: true`
(pydantic's lax mode: 1) and `role: "wizard"` are served by both; a non-UTF-8 body, a GET on a POST
route and an unknown route answered FastAPI's `{"detail": ...}`."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.engine
HI = [{"role": "user", "content": "hi"}]


def _chat(extra: str) -> bytes:
    return ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, ' + extra + "}").encode()


# (name, route, raw body, the field thinkcap names, vLLM's own status)
CASES = [
    ("temperature NaN", "/v1/chat/completions", _chat('"temperature": NaN'), "temperature", 400),
    ("temperature -Infinity", "/v1/chat/completions", _chat('"temperature": -Infinity'), "temperature", 400),
    ("max_tokens Infinity", "/v1/chat/completions",
     b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": Infinity}', "max_tokens", 400),
    ("max_tokens 1e400", "/v1/chat/completions",
     b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}', "max_tokens", 400),
    ("max_tokens true", "/v1/chat/completions",
     b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": true}', "max_tokens", 200),
    ("seed false", "/v1/completions", b'{"model": "tiny", "prompt": "hi", "max_tokens": 2, "seed": false}', "seed", 200),
    ("n true", "/v1/completions", b'{"model": "tiny", "prompt": "hi", "max_tokens": 2, "n": true}', "n", 200),
    ("NaN inside logit_bias", "/v1/chat/completions", _chat('"logit_bias": {"5": NaN}'), "logit_bias.5", 200),
    ("role wizard", "/v1/chat/completions", json.dumps({"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}],
                                                         "max_tokens": 2}).encode(), "messages.0.role", 200),
    ("max_output_tokens true", "/v1/responses",
     b'{"model": "tiny", "input": "hi", "max_output_tokens": true}', "max_output_tokens", 200),
    ("messages max_tokens true", "/v1/messages",
     b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": true}', "max_tokens", 200),
    ("non-UTF-8 body", "/v1/chat/completions",
     b'{"model": "tiny", "messages": [{"role": "user", "content": "\xff\xfe"}], "max_tokens": 2}', "body", 400),
    ("not JSON", "/v1/chat/completions", b'{"model": ', "body", 400),
]


def _post(server, path: str, raw: bytes) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if server.api_key:
        headers["authorization"] = f"Bearer {server.api_key}"
    return httpx.post(server.url + path, content=raw, headers=headers, timeout=120)


def _is_openai_error(r: httpx.Response) -> bool:
    body = r.json()
    return set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])


@pytest.mark.parametrize(("name", "route", "raw", "param", "vllm_status"), CASES, ids=[c[0] for c in CASES])
def test_loose_input_is_refused_naming_the_field(server, vllm_server, name, route, raw, param, vllm_status):
    for prefix in ("", "/llm"):  # under the mount prefix too
        r = _post(server, prefix + route, raw)
        assert r.status_code == 400 and _is_openai_error(r), (name, r.text)
        assert r.json()["error"]["param"] == param, r.text
    theirs = _post(vllm_server, route, raw)
    assert theirs.status_code == vllm_status, (name, theirs.text)


def test_strict_neighbours_still_pass(server):
    """Finite floats, integers in float fields, a tool message, `developer`, a big finite number."""
    ok = [_chat('"temperature": 0, "top_p": 1, "presence_penalty": 1e-3'),
          _chat('"seed": 7, "frequency_penalty": 0.5'),
          json.dumps({"model": "tiny", "max_tokens": 2, "messages": [
              {"role": "developer", "content": "be brief"}, *HI,
              {"role": "assistant", "content": None, "tool_calls": [
                  {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
              {"role": "tool", "tool_call_id": "c1", "content": "3"}]}).encode(),
          b'{"model": "tiny", "prompt": "hi", "max_tokens": 2, "logprobs": 1, "echo": false}']
    for raw in ok:
        route = "/v1/completions" if b'"prompt"' in raw else "/v1/chat/completions"
        r = _post(server, route, raw)
        assert r.status_code == 200, (raw, r.text)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/chat/completions", 405), ("GET", "/v1/no-such-route", 404), ("POST", "/v1/no-such-route", 404),
    ("DELETE", "/v1/completions", 405), ("GET", "/llm/v1/no-such-route", 404),
])
def test_router_errors_are_openai_errors(server, vllm_server, method, path, status):
    headers = {"authorization": f"Bearer {server.api_key}"} if server.api_key else {}
    r = httpx.request(method, server.url + path, headers=headers, timeout=60)
    assert r.status_code == status and _is_openai_error(r), r.text
    assert r.json()["error"]["code"] == status
    if status == 405:
        assert "POST" in r.headers.get("allow", "")
    theirs = httpx.request(method, vllm_server.url + path.removeprefix("/llm"), timeout=60)
    assert theirs.status_code == status and "detail" in theirs.json()  # FastAPI's default body on vLLM's server
