"""The budget controls (issue 20) and the answer promise (issue 19.2) through `thinkcap serve`:
exact positions under greedy decoding, stream == non-stream, every dialect, mixed controls at once."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from transformers import AutoTokenizer

from budget import BudgetParams, build_profile, replay

pytestmark = pytest.mark.engine
USER = [{"role": "user", "content": "What is 2 + 3? Think step by step."}]
MSG = " Time to answer."


@pytest.fixture(scope="module")
def tok(server):
    return AutoTokenizer.from_pretrained(server.model_dir)


@pytest.fixture(scope="module")
def profile(tok):
    return build_profile(tok, model_type="glm4v")


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json={"model": server.model, **body}, timeout=120,
                      headers={"Authorization": f"Bearer {server.api_key}"})


def chat(server, **body) -> dict:
    body = {"messages": USER, "max_tokens": 40, "temperature": 0, "return_token_ids": True, **body}
    resp = post(server, "/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def chat_stream(server, **body) -> tuple[str, str, str, dict]:
    body = {"messages": USER, "max_tokens": 40, "temperature": 0, "stream": True, **body}
    reasoning = content = finish = ""
    info = None
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json={"model": server.model, **body}, timeout=120,
                      headers={"Authorization": f"Bearer {server.api_key}"}) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for ch in json.loads(line[6:]).get("choices", []):
                reasoning += ch["delta"].get("reasoning_content") or ""
                content += ch["delta"].get("content") or ""
                if ch.get("finish_reason"):
                    finish, info = ch["finish_reason"], ch.get("thinkcap")
    return reasoning, content, finish, info


CASES = {
    "message": dict(think_budget=10, min_think_tokens=10, think_budget_message=MSG),
    "grace": dict(think_budget=6, min_think_tokens=6, think_budget_grace=4),
    "truncate": dict(think_budget=5, min_think_tokens=5, think_budget_action="truncate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_control_exact_and_stream_agrees(server, tok, profile, case):
    body = CASES[case]
    resp = chat(server, **body)
    choice = resp["choices"][0]
    ids, prompt, info = choice["token_ids"], resp["prompt_token_ids"], choice["thinkcap"]
    msg = tuple(tok.encode(MSG, add_special_tokens=False)) if case == "message" else ()
    params = BudgetParams(think_budget=info["think_budget"], min_think_tokens=body["min_think_tokens"],
                          message_ids=msg, grace=body.get("think_budget_grace", 0),
                          action=body.get("think_budget_action", "force"))
    state = replay(profile, params, prompt, ids)
    assert (info["forced_positions"], info["close_reason"]) == (state.forced_positions, state.close_reason)
    if case == "message":
        start = 10 - len(msg)
        assert tuple(ids[start:10]) == msg and ids[10:12] == list(profile.closing_ids)
        assert info["forced_positions"] == list(range(start, 12)) and info["close_reason"] == "budget"
        assert info["num_thinking_tokens"] == 10 and MSG.strip() in choice["message"]["reasoning_content"]
    elif case == "grace":
        close = ids.index(profile.think_close_id)
        assert 6 <= close <= 10 and info["forced_positions"] == [close, close + 1]
        assert info["close_reason"] == ("grace_limit" if close == 10 else "boundary")
        assert close == 10 or ids[close - 1] in profile.boundary_ids
    else:
        assert ids == ids[:5] + [profile.stop_id] and len(ids) == 6 and choice["finish_reason"] == "length"
        assert info["close_reason"] == "truncated" and info["forced_positions"] == [] and not choice["message"]["content"]
    reasoning, content, finish, streamed = chat_stream(server, **body)
    assert (reasoning, content or None, finish) == (choice["message"]["reasoning_content"],
                                                     choice["message"]["content"] or None, choice["finish_reason"])
    assert streamed == info


def test_mixed_controls_in_flight_together_match_solo_runs(server):
    async def one(client, body):
        r = await client.post(f"{server.url}/v1/chat/completions", json={
            "model": server.model, "messages": USER, "max_tokens": 40, "temperature": 0, "return_token_ids": True, **body},
            headers={"Authorization": f"Bearer {server.api_key}"})
        assert r.status_code == 200, (body, r.text)
        return r.json()["choices"][0]

    bodies = [*CASES.values(), {"think_budget": 3}, {}, {"think_budget": 8, "answer_required": False}]

    async def run_all():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(one(client, b) for b in bodies))

    together = asyncio.run(run_all())
    solo = [chat(server, **b)["choices"][0] for b in bodies]
    assert [(c["token_ids"], c["thinkcap"]) for c in together] == [(c["token_ids"], c["thinkcap"]) for c in solo]


def test_every_dialect_takes_the_controls(server, tok):
    n_msg = len(tok.encode(MSG, add_special_tokens=False))
    controls = {"min_think_tokens": 8, "think_budget_message": MSG}
    prompt = tok.apply_chat_template(USER, tokenize=False, add_generation_prompt=True) + "<think>"
    completion = post(server, "/v1/completions", {"prompt": prompt, "max_tokens": 30, "temperature": 0,
                                                  "think_budget": 8, **controls}).json()
    info = completion["choices"][0]["thinkcap"]
    assert info["close_reason"] == "budget" and info["forced_positions"][:1] == [8 - n_msg]
    responses = post(server, "/v1/responses", {"input": USER[0]["content"], "max_output_tokens": 30, "temperature": 0,
                                                "think_budget": 8, **controls}).json()
    assert responses["thinkcap"]["close_reason"] == "budget" and responses["thinkcap"]["num_thinking_tokens"] == 8
    messages = post(server, "/v1/messages", {"messages": USER, "max_tokens": 30, "temperature": 0,
                                             "thinking": {"type": "enabled", "budget_tokens": 8},
                                             "thinking_budget_message": MSG, "min_think_tokens": 8}).json()
    assert messages["thinkcap"]["close_reason"] == "budget" and messages["thinkcap"]["forced_positions"][0] == 8 - n_msg
    cut = post(server, "/v1/messages", {"messages": USER, "max_tokens": 30, "temperature": 0, "min_think_tokens": 4,
                                        "thinking": {"type": "enabled", "budget_tokens": 4},
                                        "think_budget_action": "truncate"}).json()
    assert cut["stop_reason"] == "max_tokens" and cut["thinkcap"]["close_reason"] == "truncated"


def test_bad_control_is_a_400_naming_the_field(server):
    resp = post(server, "/v1/chat/completions", {"messages": USER, "think_budget": 4, "think_budget_grace": -2})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "think_budget_grace"
