"""HTTP-layer tests over the fake backend (fast): validation, errors, response and stream format.
The same behaviours run against the real vLLM engine in test_server_engine.py."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from budget import replay, split_output
from budget.params import BudgetParams

USER = [{"role": "user", "content": "What is 2 + 3?"}]


def chat(client, **body):
    return client.post("/v1/chat/completions", json={"messages": USER, **body})


def png_data_url(size=(32, 24)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def sse_events(client, **body) -> list[dict | str]:
    events = []
    with client.stream("POST", "/v1/chat/completions", json={"messages": USER, "stream": True, **body}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                payload = line.removeprefix("data: ")
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.mark.parametrize(("budget", "fragment"), [
    ("5", "must be an integer"), (True, "must be an integer"), (1.5, "must be an integer"),
    (-2, "must be >= 0"), ([3], "must be an integer"),
])
def test_bad_budget_is_400_naming_the_field(fake_app_client, budget, fragment):
    client, backend = fake_app_client()
    r = chat(client, think_budget=budget)
    assert r.status_code == 400
    err = r.json()["error"]
    assert fragment in err["message"] and err["param"] == "think_budget" and err["code"] == 400
    assert backend.rendered == []  # rejected before the engine saw anything


def test_alias_and_conflict(fake_app_client):
    client, _ = fake_app_client()
    r = chat(client, thinking_token_budget=4)
    assert r.status_code == 200 and r.json()["thinkcap"]["think_budget"] == 4
    r = chat(client, think_budget=4, thinking_token_budget=5)
    assert r.status_code == 400 and "conflicting" in r.json()["error"]["message"]


def test_max_tokens_too_small_for_closing_plus_reserve(fake_app_client):
    client, _ = fake_app_client(answer_reserve=4)
    r = chat(client, think_budget=10, max_tokens=5)  # closing (2) + reserve (4) = 6 > 5
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "max_tokens" and "at least 6" in err["message"]
    ok = chat(client, think_budget=10, max_tokens=6)
    assert ok.status_code == 200 and ok.json()["thinkcap"]["effective_think_budget"] == 0


def test_min_think_above_budget_is_400(fake_app_client):
    client, _ = fake_app_client()
    r = chat(client, think_budget=3, min_think_tokens=9)
    assert r.status_code == 400 and r.json()["error"]["param"] == "min_think_tokens"


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"model": "gpt-4"}, 404, "does not exist"),
    ({"n": 99}, 400, "n=99"),
    ({"reasoning_effort": "extreme"}, 400, "reasoning_effort"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "x"}}]}]}, 400, "content"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, "only user"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "role"),
    ({"temperature": 5}, 400, "temperature"),
    ({"stop": [""]}, 400, "stop"),
    ({"seed": 2**64}, 400, "seed"),  # beyond int64: would fail inside the engine
])
def test_client_errors(fake_app_client, body, status, fragment):
    client, _ = fake_app_client()
    r = client.post("/v1/chat/completions", json={"messages": USER, **body})
    assert r.status_code == status, r.json()
    assert fragment in r.json()["error"]["message"]


def test_media_errors(fake_app_client, tmp_path):
    client, backend = fake_app_client()

    def with_image(url):
        content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]
        return client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": content}]})

    assert "not valid base64" in with_image("data:image/png;base64,@@@").json()["error"]["message"]
    assert "could not read the image" in with_image("data:image/png;base64,aGVsbG8=").json()["error"]["message"]
    outside = with_image("/etc/passwd")
    assert outside.status_code == 400 and "outside the allowed" in outside.json()["error"]["message"]
    assert "does not exist" in with_image(str(tmp_path / "missing.png")).json()["error"]["message"]
    assert "scheme" in with_image("ftp://example.com/a.png").json()["error"]["message"]
    for refused_by_the_os in ("a\x00b.png", "~no-such-user-thinkcap/a.png", "x" * 5000):
        r = with_image(refused_by_the_os)
        assert r.status_code == 400 and "invalid local media path" in r.json()["error"]["message"]
    assert backend.rendered == []


def test_too_many_images(fake_app_client):
    from serving.settings import MediaLimits

    client, _ = fake_app_client(media=MediaLimits(max_images_per_request=1))
    part = {"type": "image_url", "image_url": {"url": png_data_url()}}
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [part, part]}]})
    assert r.status_code == 400 and "at most 1" in r.json()["error"]["message"]


def test_image_reaches_the_engine_as_pil(fake_app_client, tmp_path):
    client, backend = fake_app_client()
    Image.new("RGB", (40, 30), (0, 0, 255)).save(tmp_path / "blue.png")
    content = [{"type": "image_url", "image_url": {"url": png_data_url()}},
               {"type": "image_url", "image_url": {"url": str(tmp_path / "blue.png")}},
               {"type": "text", "text": "compare"}]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200
    text, mm = backend.rendered[-1]
    assert text.count("<|image|>") == 2
    assert [im.size for im in mm["image"]] == [(32, 24), (40, 30)]
    assert mm["image"][1].getpixel((0, 0)) == (0, 0, 255)


def test_api_key(fake_app_client):
    client, _ = fake_app_client(api_key="sekret")
    assert chat(client).status_code == 401
    assert client.get("/v1/models").status_code == 401
    ok = client.post("/v1/chat/completions", json={"messages": USER}, headers={"Authorization": "Bearer sekret"})
    assert ok.status_code == 200
    assert client.get("/health").status_code == 200  # probes need no key


@pytest.mark.parametrize("budget", [1, 5, 20])
def test_budget_forces_closing_at_exact_position(fake_app_client, budget):
    client, backend = fake_app_client()
    body = chat(client, think_budget=budget, return_token_ids=True).json()
    ids, choice = body["choices"][0]["token_ids"], body["choices"][0]
    close, answer = backend.profile.closing_ids
    assert ids[budget : budget + 2] == [close, answer]
    hidden = {answer, *backend.profile.eos_token_ids, backend.profile.answer_close_id}
    assert choice["thinkcap"] == {"num_thinking_tokens": budget, "answer_forced": True, "boxed_answer": None,
                                  "forced_positions": [budget, budget + 1],
                                  "num_answer_tokens": len([t for t in ids[budget + 2 :] if t not in hidden])}
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == budget
    assert body["usage"]["completion_tokens"] == len(ids)
    tok = backend.tokenizer
    assert choice["message"]["reasoning_content"] == tok.decode(ids[:budget], skip_special_tokens=True)
    assert choice["message"]["content"] == tok.decode(ids[budget + 2 :], skip_special_tokens=True)


def test_budget_zero_prefills_the_closing_sequence(fake_app_client):
    client, backend = fake_app_client()
    body = chat(client, think_budget=0, return_token_ids=True).json()
    assert backend.rendered[-1][0].endswith("<|assistant|>\n<think></think><answer>")
    choice = body["choices"][0]
    assert choice["thinkcap"]["num_thinking_tokens"] == 0 and not choice["thinkcap"]["answer_forced"]
    assert choice["message"]["reasoning_content"] is None and choice["message"]["content"]


def test_unlimited_budget_model_closes_itself(fake_app_client):
    client, backend = fake_app_client()
    body = chat(client, think_budget=None, max_tokens=200).json()
    info = body["choices"][0]["thinkcap"]
    assert info["num_thinking_tokens"] == 30 and not info["answer_forced"]  # the fake closes after 30
    assert body["thinkcap"] == {"think_budget": None, "effective_think_budget": 200 - 2 - 16}


def test_reasoning_effort_and_server_default(fake_app_client):
    client, _ = fake_app_client(default_think_budget=7, reasoning_effort_budgets={"low": 3})
    assert chat(client).json()["choices"][0]["thinkcap"]["num_thinking_tokens"] == 7
    assert chat(client, reasoning_effort="low").json()["thinkcap"]["think_budget"] == 3
    # An explicit null beats the server default: unlimited.
    assert chat(client, think_budget=None).json()["thinkcap"]["think_budget"] is None


def test_boxed_answer_from_ids(fake_app_client, tiny_tokenizer):
    from serving.postprocess import finish_choice

    client, backend = fake_app_client()
    p = backend.profile
    words = tiny_tokenizer.encode(" 42", add_special_tokens=False)
    out = [500, p.think_close_id, p.answer_open_id, 600, p.box_open_id, *words, p.box_close_id,
           p.answer_close_id, tiny_tokenizer.eos_token_id]
    prompt = tiny_tokenizer.encode("<think>", add_special_tokens=False)
    res = finish_choice(tiny_tokenizer, p, None, prompt, 0, out, "stop", [])
    assert res.info.boxed_answer == "42" and res.info.num_thinking_tokens == 1
    assert "<|begin_of_box|> 42<|end_of_box|>" in res.content and "<answer>" not in res.content


def test_stream_splits_reasoning_then_content(fake_app_client):
    client, backend = fake_app_client()
    events = sse_events(client, think_budget=5, return_token_ids=True, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    kinds = [k for c in chunks for ch in c["choices"] for k in ch["delta"] if k in ("reasoning_content", "content")]
    assert kinds == sorted(kinds, key=lambda k: k == "content") and set(kinds) == {"reasoning_content", "content"}
    ids = [t for c in chunks for ch in c["choices"] for t in ch.get("token_ids", [])]
    reasoning = "".join(ch["delta"].get("reasoning_content", "") for c in chunks for ch in c["choices"])
    content = "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])
    seg = split_output(replay(backend.profile, BudgetParams(5), chunks[0]["prompt_token_ids"], ids), ids)
    tok = backend.tokenizer
    assert reasoning == tok.decode(seg.reasoning_ids) and content == tok.decode(seg.answer_ids, skip_special_tokens=True)
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert final["choices"][0]["thinkcap"]["forced_positions"] == [5, 6]
    assert final["thinkcap"] == {"think_budget": 5, "effective_think_budget": 5}
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens_details"]["reasoning_tokens"] == 5
    assert usage["usage"]["completion_tokens"] == len(ids)


def test_stream_n2_each_choice_finishes(fake_app_client):
    client, _ = fake_app_client()
    events = sse_events(client, think_budget=2, n=2, seed=3)
    finished = [ch["index"] for c in events[:-1] for ch in c["choices"] if ch["finish_reason"]]
    assert sorted(finished) == [0, 1]


def test_metrics_count_requests_and_forced_answers(fake_app_client):
    client, _ = fake_app_client()
    chat(client, think_budget=2)
    chat(client, think_budget="x")
    text = client.get("/metrics").text
    assert 'thinkcap_requests_total{outcome="ok"} 1.0' in text
    assert 'thinkcap_requests_total{outcome="400"} 1.0' in text
    assert "thinkcap_forced_answers_total 1.0" in text
    assert "thinkcap_thinking_tokens_total 2.0" in text
