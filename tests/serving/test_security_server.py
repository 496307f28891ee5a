"""The security rules on the real `thinkcap serve` (shared session server, tiny model, CPU engine):
nothing is fetched from the server's own network, auth comes before the body is read, over-limit
requests get 400s naming the field, 64 concurrent mixed-budget streams each keep their own budget
and equal their solo runs, and a bounded schema fuzz sees no 5xx."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from transformers import AutoTokenizer

from budget import BudgetParams, build_profile, replay
from tests.serving.security_helpers import Listener
from tests.serving.test_security import internal_spellings

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def inside():
    listener = Listener("127.0.0.1")
    yield listener
    listener.close()


def post(server, path: str, body, key: str | None = "default", raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {server.api_key if key == 'default' else key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, timeout=120)


def chat(server, **body) -> httpx.Response:
    return post(server, "/v1/chat/completions", {"model": server.model, "max_tokens": 4,
                                                 "messages": [{"role": "user", "content": "hi"}], **body})


def media_bodies(server, url: str) -> list[tuple[str, dict]]:
    """The same URL as an image and a video in every dialect that carries media."""
    return [
        ("/v1/chat/completions", {"model": server.model, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]}]}),
        ("/v1/chat/completions", {"model": server.model, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": "?"}]}]}),
        ("/v1/responses", {"model": server.model, "max_output_tokens": 16, "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": url}, {"type": "input_text", "text": "?"}]}]}),
        ("/v1/messages", {"model": server.model, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}}, {"type": "text", "text": "?"}]}]}),
    ]


def test_media_urls_into_the_servers_network_are_refused(server, inside):
    refused = 0
    for url in [*internal_spellings(inside.port), "http://169.254.169.254/latest/meta-data/"]:
        for path, body in media_bodies(server, url):
            resp = post(server, path, body)
            assert resp.status_code == 400, (path, url, resp.text)
            assert "resolves to" in resp.text, resp.text
            refused += 1
    assert inside.hits == []
    print(f"\nSSRF attempts through the server refused: {refused}, requests that reached the listener: 0")


# Every route vLLM reads media on, and the same routes under the server's --root-path (the session
# server mounts at /llm). Before the door walked every body, all of these fetched loopback URLs.
MEDIA_ROUTES = ["/v1/chat/completions", "/llm/v1/chat/completions", "/invocations", "/llm/invocations",
                "/v1/chat/completions/batch", "/tokenize", "/llm/tokenize", "/v1/messages/count_tokens"]
SPELLINGS = [{"type": "image_url", "image_url": {"url": "{url}"}}, {"image_url": {"url": "{url}"}},
             {"type": "input_image", "image_url": "{url}", "detail": "auto"}]


@pytest.mark.parametrize("route", MEDIA_ROUTES)
def test_no_route_or_prefix_walks_around_the_media_gate(server, inside, route):
    url = f"http://127.0.0.1:{inside.port}/x.png"
    for spelling in SPELLINGS:
        part = json.loads(json.dumps(spelling).replace("{url}", url))
        messages = [{"role": "user", "content": [part, {"type": "text", "text": "?"}]}]
        body = {"model": server.model, "max_tokens": 4, "messages": [messages] if route.endswith("/batch") else messages}
        resp = post(server, route, body)
        assert resp.status_code == 400 and "resolves to" in resp.text, (route, spelling, resp.text)
    # The HF processor fetches an image_pil string as a URL: refused, never passed on.
    resp = post(server, route, {"model": server.model, "max_tokens": 4, "messages": [
        {"role": "user", "content": [{"type": "image_pil", "image_pil": url}]}]})
    assert resp.status_code == 400 and "image_pil" in resp.text
    assert inside.hits == []


def test_the_budget_layer_works_under_the_root_path(server):
    body = {"model": server.model, "max_tokens": 24, "think_budget": 5, "temperature": 0,
            "messages": [{"role": "user", "content": "hi"}]}
    for path in ("/llm/v1/chat/completions", "/v1/chat/completions", "/llm/invocations"):
        info = post(server, path, body).json()["choices"][0]["thinkcap"]
        assert info["think_budget"] == 5 and info["num_thinking_tokens"] <= 5, (path, info)
    resp = post(server, "/llm/v1/chat/completions", {**body, "think_budget": -7})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "think_budget"


def test_auth_comes_before_the_body(server):
    """A malformed body without a key is a 401 (OpenAI shape), not a 400 that reveals parsing."""
    for key in (None, "wrong-key"):
        for raw in (b"{not json", b"[]", b"{" * 5000, json.dumps({"messages": "x"}).encode()):
            resp = post(server, "/v1/chat/completions", None, key=key, raw=raw)
            assert resp.status_code == 401, (key, raw[:20], resp.text)
    resp = post(server, "/v1/chat/completions", None, raw=b"{not json")
    assert resp.status_code == 400  # with the key, the body is read and refused


def test_auth_error_shape(server):
    resp = post(server, "/v1/completions", None, key=None, raw=b"{}")
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["type"] == "AuthenticationError" and error["code"] == 401 and "API key" in error["message"]
    assert resp.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/health").status_code == 200  # unguarded paths stay open


@pytest.mark.parametrize(("body", "param", "match"), [
    ({"max_tokens": 10**12}, None, "max_tokens|maximum context"),  # vLLM's own check
    ({"stop": [f"s{i}" for i in range(1000)]}, None, "stop"),  # vLLM's VLLM_MAX_STOP_STRINGS (4)
    ({"stop": ["a", "b", "c", "d", "e"]}, None, "stop"),
    ({"stop": ["x" * 10_000]}, "stop", "10000 characters"),
    ({"messages": [{"role": "user", "content": "hi"}] * 1025}, "messages", "1025 messages"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 257}]}, "messages.0.content",
     "257 content parts"),
    ({"metadata": json.loads("[" * 100 + "]" * 100)}, "body", "nested 101 levels"),
    ({"n": 1000}, "n", ""),
])
def test_over_limit_requests_are_400s(server, body, param, match):
    resp = chat(server, **body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert re.search(match, error["message"]), error
    if param is not None:
        assert error["param"] == param


def test_deep_json_beyond_the_parsers_stack(server):
    resp = post(server, "/v1/chat/completions", None, raw=b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert resp.status_code == 400 and "nested" in resp.json()["error"]["message"]


# ---- load ---------------------------------------------------------------------------------------
BUDGETS = [0, 1, 3, 8, 16, None]


async def stream_one(server, i: int) -> dict:
    b = BUDGETS[i % len(BUDGETS)]
    body = {"model": server.model, "messages": [{"role": "user", "content": f"Count to {i}."}], "max_tokens": 28,
            "temperature": 1.0, "seed": 1000 + i, "stream": True, "return_token_ids": True,
            "think_budget": b, "min_think_tokens": b or 0, "stream_options": {"include_usage": True}}
    ids, info, prompt = [], None, None
    async with httpx.AsyncClient(timeout=600) as client:
        async with client.stream("POST", f"{server.url}/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {server.api_key}"}) as resp:
            assert resp.status_code == 200, await resp.aread()
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                prompt = chunk.get("prompt_token_ids") or prompt
                for choice in chunk.get("choices", []):
                    ids += choice.get("token_ids") or []
                    info = choice.get("thinkcap") or info
    return {"i": i, "budget": b, "ids": ids, "info": info, "prompt": prompt}


@pytest.mark.slow
def test_64_concurrent_mixed_budget_streams(server):
    tok = AutoTokenizer.from_pretrained(server.model_dir)
    profile = build_profile(tok, model_type="glm4v")

    async def run(indices):
        return await asyncio.gather(*(stream_one(server, i) for i in indices), return_exceptions=True)

    start = time.monotonic()
    results = asyncio.run(run(range(64)))
    wall = time.monotonic() - start
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    for r in results:
        b, ids, info = r["budget"], r["ids"], r["info"]
        assert info is not None and ids, r
        assert r["prompt"] is None or r["prompt"][-1] == profile.think_open_id  # the prompt opened thinking
        if b is not None:  # min_think_tokens = budget: the close is forced exactly at the budget
            assert ids[b: b + 2] == list(profile.closing_ids), r
            assert info["num_thinking_tokens"] == b and info["forced_positions"][:2] == [b, b + 1]
        if r["prompt"] is not None:
            state = replay(profile, BudgetParams(info["think_budget"], open_thinking=True), r["prompt"], ids)
            assert state.num_thinking_tokens == info["num_thinking_tokens"]
    solo = [asyncio.run(run([i]))[0] for i in range(0, 64, 8)]  # one budget of each kind, one at a time
    same = sum(s["ids"] == results[s["i"]]["ids"] for s in solo)
    tokens = sum(len(r["ids"]) for r in results)
    print(f"\n64 streams: {wall:.1f} s, {tokens} tokens, 0 errors; solo reruns equal: {same}/{len(solo)}")
    assert same == len(solo)


# ---- schema fuzz --------------------------------------------------------------------------------
FUZZED = ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages")
EXAMPLES = 40  # per endpoint and generation mode: 4 x 2 x 40 = 320 requests


@pytest.mark.slow
def test_schema_fuzz_gives_no_5xx(server):
    """schemathesis draws bodies from vLLM's own OpenAPI schema (valid and invalid ones) for the four
    endpoints thinkcap's middleware rewrites; none may end in a server error."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    statuses: dict[int, int] = {}
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {server.api_key}"}
    for path in FUZZED:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=schema[path]["POST"].as_strategy(generation_mode=mode))
            def run(case):
                resp = case.call(base_url=server.url, headers=auth, timeout=300)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                if resp.status_code >= 500:
                    failures.append(f"{path} {resp.status_code} {resp.text[:300]} body={str(case.body)[:300]}")

            run()
    print(f"\nschema fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert failures == []
    assert httpx.get(f"{server.url}/health").status_code == 200


# ---- SIGTERM ------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("shutdown_timeout", [
    pytest.param(0, marks=pytest.mark.xfail(reason="vLLM 0.32 abort mode (observed): the engine stops, but an open "
                                                    "SSE stream is never ended; uvicorn waits for the client to close")),
    60])
def test_sigterm_aborts_or_drains_and_exits_cleanly(tiny_model_dir, tmp_path, shutdown_timeout):
    """vLLM's own shutdown, which `thinkcap serve` keeps: on SIGTERM, `--shutdown-timeout 0` (the
    default) aborts in-flight requests, N > 0 lets them finish for up to N s; then the process exits 0."""
    import os
    import signal
    import sys

    from evaluation.servers import ServerProcess, free_port

    port, log_path = free_port(), tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(tiny_model_dir), "--port", str(port),
           "--max-model-len", "1024", "--shutdown-timeout", str(shutdown_timeout)]
    server = ServerProcess("thinkcap serve", cmd, {**os.environ, "OMP_NUM_THREADS": "1"}, log_path, port)
    server.start()
    proc, url = server.proc, server.base_url
    try:
        body = {"model": str(tiny_model_dir), "messages": [{"role": "user", "content": "go"}], "max_tokens": 300,
                "ignore_eos": True, "stream": True, "think_budget": 0}
        tokens, finish, stream_ended = 0, None, True
        # The read timeout bounds how long an abandoned stream can hold the test (and the server).
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as resp:
            lines = resp.iter_lines()
            try:
                for line in lines:
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        for choice in chunk["choices"]:
                            tokens += 1
                            finish = choice.get("finish_reason") or finish
                        if tokens == 5:
                            proc.send_signal(signal.SIGTERM)
            except httpx.ReadTimeout:
                stream_ended = False  # the server neither finished nor closed the stream
            except httpx.HTTPError:
                pass  # the connection closed under an abort
        code = proc.wait(timeout=shutdown_timeout + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"\nSIGTERM with --shutdown-timeout {shutdown_timeout}: {tokens} chunks, finish={finish}, exit {code}")
    assert stream_ended and code == 0, log_path.read_text()[-3000:]
    if shutdown_timeout:
        assert finish == "length"  # drained: the request ran to max_tokens
    else:
        assert finish != "length"  # aborted mid-way
