"""A public endpoint must not become a proxy into its own network, nor take unbounded work.

Fast part (no engine): the media fetcher against loopback listeners (SSRF spellings, redirect
hops, DNS rebinding, domain allowlist, size/time limits, sniffing), request limits, the in-flight
cap. The engine part (shared `server`) is in test_security_server.py."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from types import SimpleNamespace

import pytest

from serving import media_fetch
from serving.errors import APIError
from serving.limits import InFlight, RequestLimits, check_request, json_depth, read_body
from serving.media_fetch import check_sniffed, fetch_bytes, refusal_reason
from serving.middleware import BudgetMiddleware
from serving.settings import MediaLimits, ServerSettings
from tests.serving.security_helpers import Listener, png_bytes

PUBLIC_STAND_IN = "127.0.0.2"  # the one loopback address the tests call public
REFUSED = {"count": 0}  # SSRF attempts refused in this module (printed for the closing note)


@pytest.fixture(scope="module")
def inside():
    listener = Listener("127.0.0.1")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def public():
    listener = Listener(PUBLIC_STAND_IN)
    yield listener
    listener.close()


@pytest.fixture
def stand_in(monkeypatch):
    """127.0.0.2 counts as public; names in `names` resolve as given (else the real resolver).
    `calls` counts resolutions per name."""
    real_reason, real_resolve = media_fetch.refusal_reason, media_fetch.resolve
    names: dict[str, list[list[str]]] = {}
    calls: dict[str, int] = {}

    async def resolve(host, port):
        calls[host] = calls.get(host, 0) + 1
        if host in names:
            answers = names[host]
            return [ipaddress.ip_address(a) for a in answers[min(calls[host], len(answers)) - 1]]
        return await real_resolve(host, port)

    monkeypatch.setattr(media_fetch, "refusal_reason", lambda ip: None if str(ip) == PUBLIC_STAND_IN else real_reason(ip))
    monkeypatch.setattr(media_fetch, "resolve", resolve)
    return SimpleNamespace(names=names, calls=calls)


def fetch(url: str, limits: MediaLimits | None = None) -> bytes:
    return asyncio.run(fetch_bytes(url, limits or MediaLimits(), "messages.0.content.0"))


def refused(url: str, match: str, limits: MediaLimits | None = None) -> None:
    with pytest.raises(APIError, match=match) as info:
        fetch(url, limits)
    assert info.value.status == 400 and info.value.param == "messages.0.content.0"
    REFUSED["count"] += 1


def internal_spellings(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/secret", f"http://localhost:{port}/secret", f"http://[::1]:{port}/secret",
            f"http://2130706433:{port}/secret", f"http://127.1:{port}/secret", f"http://0x7f000001:{port}/secret",
            f"http://0177.0.0.1:{port}/secret", f"http://0:{port}/secret", f"http://0.0.0.0:{port}/secret",
            f"http://[::ffff:127.0.0.1]:{port}/secret", f"http://[::]:{port}/secret",
            f"http://LOCALHOST.:{port}/secret", f"https://127.0.0.1:{port}/secret"]


def test_internal_addresses_in_every_spelling_are_refused_before_connecting(inside):
    for url in internal_spellings(inside.port):
        refused(url, "resolves to")
    for url in ("http://10.0.0.1/a", "http://172.16.5.4/a", "http://192.168.1.1/a", "http://169.254.169.254/latest",
                "http://100.64.0.1/a", "http://224.0.0.1/a", "http://[fd00::1]/a", "http://[fe80::1]/a",
                "http://[2002:7f00:1::]/a", "http://[64:ff9b::a00:1]/a", "http://198.18.0.1/a"):
        refused(url, "resolves to")
    assert inside.hits == []


def test_address_rule_categories():
    cases = {"127.0.0.1": "a loopback", "10.1.2.3": "a private", "192.168.0.1": "a private",
             "100.64.3.4": "a carrier-grade NAT", "169.254.169.254": "a link-local", "224.0.0.5": "a multicast",
             "239.1.1.1": "a multicast", "0.0.0.0": "an unspecified", "::": "an unspecified", "::1": "a loopback",
             "fd12::1": "an IPv6 unique-local", "fe80::1": "a link-local", "::ffff:8.8.8.8": "an IPv4-mapped IPv6",
             "2002:a00:1::": "an IPv6 address wrapping a private", "2001:0::1": "a Teredo IPv6",
             "255.255.255.255": "a private"}
    for text, reason in cases.items():
        assert refusal_reason(ipaddress.ip_address(text)) == reason, text
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700::1111", "2002:808:808::", "64:ff9b::808:808"):
        assert refusal_reason(ipaddress.ip_address(public)) is None, public


def test_other_schemes_and_credentials_are_refused(inside):
    for url, match in ((f"ftp://127.0.0.1:{inside.port}/x", "unsupported"), ("gopher://127.0.0.1:70/_x", "unsupported"),
                       ("dict://127.0.0.1:11211/stat", "unsupported"), (f"http://u:p@127.0.0.1:{inside.port}/", "credentials"),
                       ("http:///nohost", "no host"), ("file:///etc/passwd", "disabled")):
        refused(url, match)
    assert inside.hits == []


def test_every_redirect_hop_is_checked(inside, public, stand_in):
    targets = [*internal_spellings(inside.port), "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
               f"gopher://127.0.0.1:{inside.port}/x"]
    for i, target in enumerate(targets):
        public.redirects[f"/r{i}"] = target
        refused(public.url(f"/r{i}"), "resolves to|only http|no host")
    assert inside.hits == []
    assert {path for path, _ in public.hits} >= {f"/r{i}" for i in range(len(targets))}
    public.redirects["/ok"] = "/image.png"  # a relative, public hop is followed
    assert fetch(public.url("/ok")) == png_bytes()


def test_connects_to_the_address_it_checked(inside, public, stand_in):
    """DNS rebinding: the name answers public first, loopback afterwards. The fetcher resolves once
    and connects to the checked address, sending the name as Host."""
    stand_in.names["rebind.test"] = [[PUBLIC_STAND_IN], ["127.0.0.1"]]
    before = len(public.hits)
    assert fetch(f"http://rebind.test:{public.port}/image.png") == png_bytes()
    assert public.hits[before:] == [("/image.png", f"rebind.test:{public.port}")]
    assert stand_in.calls["rebind.test"] == 1 and inside.hits == []
    stand_in.names["mixed.test"] = [[PUBLIC_STAND_IN, "10.0.0.7"]]  # one bad answer spoils the name
    refused(f"http://mixed.test:{public.port}/image.png", "a private")


def test_redirects_are_bounded(public, stand_in):
    before = len(public.hits)
    refused(public.url("/loop"), "more than 2 redirects", MediaLimits(max_redirects=2))
    assert len(public.hits) - before == 3


def test_allowed_media_domains_are_enforced_on_every_hop(public, stand_in):
    stand_in.names.update({"cdn.test": [[PUBLIC_STAND_IN]], "other.test": [[PUBLIC_STAND_IN]]})
    limits = MediaLimits(allowed_media_domains=["CDN.test"])
    assert fetch(f"http://cdn.test:{public.port}/image.png", limits) == png_bytes()
    before = len(public.hits)
    refused(f"http://other.test:{public.port}/image.png", "allowed-media-domains", limits)
    assert len(public.hits) == before  # refused before any connection
    public.redirects["/to-other"] = f"http://other.test:{public.port}/image.png"
    refused(f"http://cdn.test:{public.port}/to-other", "allowed-media-domains", limits)
    assert [p for p, _ in public.hits[before:]] == ["/to-other"]


def test_allow_private_media_urls_opens_internal_addresses(inside):
    before = len(inside.hits)
    assert fetch(inside.url("/image.png"), MediaLimits(allow_private_media_urls=True)) == png_bytes()
    assert len(inside.hits) == before + 1


def test_size_time_and_status_limits(public, stand_in):
    refused(public.url("/big"), "larger than", MediaLimits(fetch_max_bytes=1000))
    refused(public.url("/claims-big"), "larger than")
    refused(public.url("/slow"), "longer than 0.5 s", MediaLimits(fetch_timeout_s=0.5))
    public.redirects["/gone"] = ""
    refused(public.url("/gone"), "without a Location")


def test_content_is_sniffed_not_trusted(public, stand_in):
    with pytest.raises(APIError, match="no known image or video format"):
        check_sniffed(fetch(public.url("/html")), "image", "p")
    with pytest.raises(APIError, match="could not open the video: its bytes are image/png .* not video"):
        check_sniffed(png_bytes(), "video", "p")
    assert check_sniffed(png_bytes(), "image", "p") == "image/png"
    assert check_sniffed(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 16, "video", "p") == "video/mp4"


# ---- request limits -----------------------------------------------------------------------------
def test_request_shape_limits_name_the_field():
    limits = RequestLimits(max_json_depth=8, max_messages=3, max_content_parts=2, max_stop_chars=5)
    deep: dict = {"messages": []}
    node = deep
    for _ in range(10):
        node["x"] = {}
        node = node["x"]
    assert json_depth(deep) == 11
    cases = [(deep, "body", "nested 11 levels"),
             ({"messages": [{"role": "user", "content": "hi"}] * 4}, "messages", "4 messages"),
             ({"input": [{"role": "user", "content": "hi"}] * 4}, "input", "4 input"),
             ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 3}]},
              "messages.0.content", "3 content parts"),
             ({"stop": "abcdef"}, "stop", "6 characters"), ({"stop": ["ab", "abcdefg"]}, "stop", "stop string 1"),
             ({"stop_sequences": ["x" * 9]}, "stop_sequences", "9 characters")]
    for body, param, match in cases:
        with pytest.raises(APIError, match=match) as info:
            check_request(body, limits)
        assert info.value.param == param and info.value.status == 400
    check_request({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 2}] * 3,
                   "stop": ["abcde"]}, limits)  # at every limit: accepted
    assert json_depth([[[[]]]]) == 4 and json_depth(7) == 0


def test_body_is_cut_off_at_the_limit():
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(100)]
    taken = []

    async def receive():
        taken.append(1)
        return chunks[len(taken) - 1]

    with pytest.raises(APIError, match="larger than this server's limit of 1024") as info:
        asyncio.run(read_body(receive, 1024))
    assert info.value.status == 413 and len(taken) == 2  # stopped reading at the second chunk


def test_in_flight_cap_answers_429_with_retry_after():
    """The real middleware with a cap of 2 in front of a stand-in for vLLM's route that holds every
    request until released: the third concurrent request gets 429 + Retry-After at once, and a slot
    frees when a response ends."""
    settings = ServerSettings(limits=RequestLimits(max_in_flight_requests=2, retry_after_s=3))
    release = asyncio.Event()

    async def vllm_route(scope, receive, send):
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = BudgetMiddleware(vllm_route)
    # a stand-in for the budget layer: the cap is under test, not the budget mapping
    layer = SimpleNamespace(settings=settings, profile=SimpleNamespace(closing_ids=(1, 2)), max_model_len=1024,
                            tokenizer=SimpleNamespace(encode=lambda text, add_special_tokens=False: [1]))
    state = SimpleNamespace(thinkcap=layer, thinkcap_settings=settings)

    async def call() -> tuple[int, dict[bytes, bytes], bytes]:
        scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": [],
                 "app": SimpleNamespace(state=state)}
        sent = []
        body = json.dumps({"model": "m", "input": "hi"}).encode()

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    async def scenario():
        first = [asyncio.create_task(call()) for _ in range(2)]
        await asyncio.sleep(0.05)
        status, headers, body = await call()
        assert app.in_flight.count == 2
        release.set()
        done = await asyncio.gather(*first)
        after = await call()
        return status, headers, body, done, after

    status, headers, body, done, after = asyncio.run(scenario())
    assert status == 429 and headers[b"retry-after"] == b"3"
    assert json.loads(body)["error"]["type"] == "RateLimitError"
    assert [d[0] for d in done] == [200, 200] and after[0] == 200
    assert app.in_flight.count == 0 and app.in_flight.refused == 1


def test_in_flight_counter():
    gate, limits = InFlight(), RequestLimits(max_in_flight_requests=1)
    gate.enter(limits)
    with pytest.raises(APIError) as info:
        gate.enter(limits)
    assert info.value.status == 429
    gate.leave()
    gate.enter(limits)


def test_report_refused_count():
    print(f"\nSSRF attempts refused by the fetcher in this module: {REFUSED['count']}")
    assert REFUSED["count"] >= 40
