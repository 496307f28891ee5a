"""The real path: one `thinkcap serve` subprocess (vLLM CPU engine, tiny GLM-4.1V), driven over
HTTP with the openai SDK. Budgets are checked on the token ids the server returns
(`return_token_ids`), independently of the server's own counts."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import cv2
import httpx
import numpy as np
import openai
import pytest
from PIL import Image
from transformers import AutoTokenizer

from budget import BudgetParams, build_profile, replay, split_output

pytestmark = pytest.mark.engine
USER = [{"role": "user", "content": "What is 2 + 3? Think step by step."}]


@pytest.fixture(scope="module")
def tok(server):
    return AutoTokenizer.from_pretrained(server.model_dir)


@pytest.fixture(scope="module")
def profile(tok):
    return build_profile(tok, model_type="glm4v")


def text_of(tok, ids) -> str:
    """The text vLLM returns: special added tokens are left out (skip_special_tokens), also when the
    random model spells one out of ordinary byte tokens (vLLM's incremental detokenizer drops it)."""
    special = {t.content for t in tok.added_tokens_decoder.values() if t.special}
    text = tok.decode(ids)
    for s in special:
        text = text.replace(s, "")
    return text


def client(server, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0, **kw)


def model_id(server) -> str:
    return client(server).models.list().data[0].id


def extra(obj, name):
    return (obj.model_extra or {}).get(name)


def metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


# ---- budgets ------------------------------------------------------------------------------------
def test_concurrent_budgets_force_closing_at_exact_positions(server, profile, tok):
    """Budgets 0, 1, 5, 20 and none in flight together. min_think_tokens = budget keeps the random
    model from closing or ending early, so the forced `</think><answer>` must sit exactly at the budget."""
    budgets = [0, 1, 5, 20, None]
    aclient = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0)
    name = model_id(server)

    async def one(b, seed):
        body = {"think_budget": b, "return_token_ids": True, "min_think_tokens": b or 0}
        return await aclient.chat.completions.create(model=name, messages=USER, max_tokens=48, temperature=1.0,
                                                     seed=seed, extra_body=body)

    async def run_all():
        return await asyncio.gather(*(one(b, seed) for seed, b in enumerate(budgets)))

    responses = asyncio.run(run_all())
    close_answer = list(profile.closing_ids)
    for b, resp in zip(budgets, responses):
        choice = resp.choices[0]
        ids, prompt = extra(choice, "token_ids"), extra(resp, "prompt_token_ids")
        info = extra(choice, "thinkcap")
        assert len(ids) == resp.usage.completion_tokens
        state = replay(profile, BudgetParams(info["think_budget"], open_thinking=True), prompt, ids)
        seg = split_output(state, ids)
        assert resp.usage.completion_tokens_details.reasoning_tokens == seg.num_thinking_tokens
        assert info["num_thinking_tokens"] == seg.num_thinking_tokens
        assert info["num_answer_tokens"] == len(seg.answer_ids)
        assert choice.message.content == text_of(tok, seg.answer_ids)
        # The server's chat template opened thinking in the prompt: no decode step spent on `<think>`.
        assert prompt[-1] == profile.think_open_id
        if b is not None:
            assert ids[b : b + 2] == close_answer and profile.think_close_id not in ids[:b]
            assert info["forced_positions"] == [b, b + 1] and info["answer_forced"]
            assert seg.num_thinking_tokens == b and info["think_budget"] == b
            reasoning = extra(choice.message, "reasoning_content")
            assert reasoning == (text_of(tok, ids[:b]) or ("" if b == 0 else None))
        else:  # unlimited, but max_tokens 48 caps it: 48 - 2 (closing) - 4 (--answer-reserve)
            assert info["think_budget"] == 42 and info["answer_reserve"] == 4
            if info["answer_forced"]:
                assert ids[42:44] == close_answer


def test_short_max_tokens_shrinks_the_reserve_instead_of_refusing(server, profile):
    """vLLM's server accepts max_tokens 6 with a budget of 50: so does thinkcap, and the answer
    still comes inside max_tokens (6 - 2 closing = 4 tokens to share: the whole reserve, budget 0)."""
    resp = client(server).chat.completions.create(
        model=model_id(server), messages=USER, max_tokens=6,
        extra_body={"think_budget": 50, "return_token_ids": True})
    info, ids = extra(resp.choices[0], "thinkcap"), extra(resp.choices[0], "token_ids")
    assert info["think_budget"] == 0 and info["answer_reserve"] == 4
    assert ids[:2] == list(profile.closing_ids) and len(ids) <= 6


def test_no_budget_and_tiny_max_tokens_gives_max_tokens(server):
    """Below the closing sequence nothing can be forced: the request runs as in plain vLLM."""
    resp = client(server).chat.completions.create(model=model_id(server), messages=USER, max_tokens=1,
                                                  extra_body={"ignore_eos": True})
    assert resp.usage.completion_tokens == 1
    assert extra(resp.choices[0], "thinkcap")["think_budget"] is None


# ---- media --------------------------------------------------------------------------------------
def png_bytes(color=(220, 40, 40), size=(96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def write_mp4(path, seconds=3, fps=10, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(seconds * fps):  # a white bar sweeping right
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:, : (i * size[0]) // (seconds * fps)] = 255
        writer.write(frame)
    writer.release()


def ask(server, part, **body):
    messages = [{"role": "user", "content": [part, {"type": "text", "text": "What is shown?"}]}]
    return client(server).chat.completions.create(
        model=model_id(server), messages=messages, max_tokens=16,
        extra_body={"think_budget": 4, "min_think_tokens": 4, "return_token_ids": True, **body})


@pytest.mark.parametrize("source", ["data_url", "local_path"])
def test_image_request(server, profile, tok, source):
    data = png_bytes()
    if source == "data_url":
        url = "data:image/png;base64," + base64.b64encode(data).decode()
    else:
        (server.media_dir / "red.png").write_bytes(data)
        url = str(server.media_dir / "red.png")
    resp = ask(server, {"type": "image_url", "image_url": {"url": url}})
    prompt = extra(resp, "prompt_token_ids")
    image_id = tok.convert_tokens_to_ids("<|image|>")
    assert prompt.count(image_id) > 1  # vLLM's GLM-4.1V processor expanded the placeholder
    assert prompt[-1] == profile.think_open_id  # thinking opened in the prompt: 4 thoughts, then the close
    assert extra(resp.choices[0], "token_ids")[4:6] == list(profile.closing_ids)


@pytest.mark.parametrize("source", ["data_url", "local_path"])
def test_video_request_carries_frame_timestamps(server, profile, tok, tmp_path, source):
    path = (server.media_dir if source == "local_path" else tmp_path) / "sweep.mp4"
    write_mp4(path)
    url = str(path) if source == "local_path" else "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()
    resp = ask(server, {"type": "video_url", "video_url": {"url": url}})
    prompt = extra(resp, "prompt_token_ids")
    assert prompt.count(tok.convert_tokens_to_ids("<|image|>")) > 1  # frames expanded by vLLM's GLM-4.1V processor
    assert "<|begin_of_video|>" in tok.decode(prompt)
    assert prompt[-1] == profile.think_open_id  # thinking opened in the prompt: 4 thoughts, then the close
    assert extra(resp.choices[0], "token_ids")[4:6] == list(profile.closing_ids)


# ---- streaming ----------------------------------------------------------------------------------
def test_stream_splits_thinking_and_answer_like_non_streaming(server):
    c, name = client(server), model_id(server)
    body = {"think_budget": 6, "min_think_tokens": 6}
    kwargs = dict(model=name, messages=USER, max_tokens=30, temperature=1.0, seed=11, extra_body=body)
    full = c.chat.completions.create(**kwargs)
    order, reasoning, content, usage, finish = [], "", "", None, None
    for chunk in c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            r = extra(ch.delta, "reasoning_content")
            if r:
                reasoning += r
                order.append("reasoning")
            if ch.delta.content:
                content += ch.delta.content
                order.append("content")
            if ch.finish_reason:
                finish = (ch.finish_reason, extra(ch, "thinkcap"))
    assert order == sorted(order, key=lambda k: k == "content") and "content" in order
    # Same seed, same ids: the streamed split must equal the non-streamed one.
    assert reasoning == extra(full.choices[0].message, "reasoning_content")
    assert content == full.choices[0].message.content
    assert finish == (full.choices[0].finish_reason, extra(full.choices[0], "thinkcap"))
    assert usage.completion_tokens_details.reasoning_tokens == 6
    assert usage.completion_tokens == full.usage.completion_tokens


def _wait_engine_idle(server) -> None:
    for _ in range(200):
        if metric(server, "vllm:num_requests_running") + metric(server, "vllm:num_requests_waiting") == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the engine still holds the request after the client left")


def test_disconnect_aborts_the_engine_request(server):
    """Leave a long stream early: the engine must stop generating for it."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    # min_think_tokens: the random model may not stop on its own before we leave.
    body = {"messages": USER, "stream": True, "max_tokens": 900, "min_think_tokens": 800}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n >= 6:
                break
    _wait_engine_idle(server)
    generated = metric(server, "vllm:generation_tokens_total")
    time.sleep(1.0)  # had the request kept running, ~100+ more tokens would appear meanwhile
    assert metric(server, "vllm:generation_tokens_total") == generated


def test_non_streaming_client_timeout_aborts_too(server):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"messages": USER, "max_tokens": 900, "min_think_tokens": 800}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=0.5)
    _wait_engine_idle(server)
    generated = metric(server, "vllm:generation_tokens_total")
    time.sleep(1.0)
    assert metric(server, "vllm:generation_tokens_total") == generated


# ---- errors -------------------------------------------------------------------------------------
def test_errors_have_the_right_codes_and_server_stays_healthy(server, tmp_path):
    c, name = client(server), model_id(server)
    with pytest.raises(openai.BadRequestError, match="must be an integer"):
        c.chat.completions.create(model=name, messages=USER, extra_body={"think_budget": "ten"})
    with pytest.raises(openai.BadRequestError, match="min_think_tokens"):
        c.chat.completions.create(model=name, messages=USER, extra_body={"think_budget": 2, "min_think_tokens": 5})
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        c.chat.completions.create(model=name, messages=USER, extra_body={"reasoning_effort": "extreme"})
    with pytest.raises(openai.BadRequestError, match="n=40"):
        c.chat.completions.create(model=name, messages=USER, n=40)
    with pytest.raises(openai.BadRequestError, match="context|maximum"):
        c.chat.completions.create(model=name, messages=[{"role": "user", "content": "count 1 2 3 " * 600}])
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=USER)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    bad_image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"no png").decode()}}
    with pytest.raises(openai.BadRequestError, match="could not read the image"):
        ask(server, bad_image)
    (server.media_dir / "broken.mp4").write_bytes(b"\x00" * 2048)
    with pytest.raises(openai.BadRequestError, match="could not open the video"):
        ask(server, {"type": "video_url", "video_url": {"url": str(server.media_dir / "broken.mp4")}})
    with pytest.raises(openai.BadRequestError, match="outside the allowed"):
        ask(server, {"type": "image_url", "image_url": {"url": str(tmp_path / "x.png")}})
    with pytest.raises(openai.BadRequestError, match="pixels"):
        ask(server, {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(
            png_bytes(size=(5000, 4000))).decode()}})
    assert httpx.get(f"{server.url}/health").status_code == 200
    ok = c.chat.completions.create(model=name, messages=USER, max_tokens=8)
    assert ok.choices[0].finish_reason in ("stop", "length")
