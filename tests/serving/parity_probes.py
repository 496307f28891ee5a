"""Probes of OpenAI/vLLM API features, each returning whether the feature took effect.

Every probe sends the same requests to a server and checks an observable effect (not just a 200):
greedy equivalence for `top_k=1`, a forced token for `logit_bias`, ids inside `allowed_token_ids`,
valid JSON under a schema, a tool call for `tool_choice: required`, prompt-token deltas for the
template switches, ... `test_parity.py` runs them against vLLM's own server and `thinkcap serve`.

On thinkcap, chat outputs start with a forced `<think>` and may hold a forced closing sequence;
`free_ids` leaves out the forced positions the `thinkcap` object reports, so probes look only at
tokens the model sampled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

USER = [{"role": "user", "content": "Say something."}]
EOS_ID = 1002  # <|endoftext|> in the tiny GLM-4.1V vocabulary
TOKEN_X = 500  # an ordinary byte-pair token
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                   "required": ["city"], "additionalProperties": False}}}
YES_NO_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                 "additionalProperties": False}


@dataclass
class Target:
    base: str  # http://127.0.0.1:PORT
    model: str
    api_key: str | None = None
    budget: dict[str, Any] | None = None  # extra body fields every chat probe adds (a think budget)

    def post(self, path: str, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=timeout)

    def chat(self, **body: Any) -> dict[str, Any] | None:
        """The JSON of a 200 chat completion (token ids included), or None for any error."""
        body = {"model": self.model, "messages": USER, "max_tokens": 24, "return_token_ids": True,
                **(self.budget or {}), **body}
        r = self.post("/v1/chat/completions", body)
        return r.json() if r.status_code == 200 else None


def free_ids(choice: dict[str, Any]) -> list[int]:
    forced = set((choice.get("thinkcap") or {}).get("forced_positions") or [])
    return [t for i, t in enumerate(choice.get("token_ids") or []) if i not in forced]


def content_of(resp: dict[str, Any] | None) -> str | None:
    return None if resp is None else resp["choices"][0]["message"].get("content")


# ---- sampling parameters ----------------------------------------------------------------------
def greedy_equivalent(param: dict[str, Any]) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        # The random bf16 model has exact logit ties, which argmax and a top-k/min-p filter break
        # differently, and where they fall depends on the CPU's kernels: take the first prompt whose
        # greedy run has no tie in its first tokens, and compare up to its first tie.
        for text in TIE_FREE_CANDIDATES:
            messages = [{"role": "user", "content": text}]
            greedy = t.chat(messages=messages, temperature=0, max_tokens=12, logprobs=True, top_logprobs=2)
            if greedy is None:
                return False
            n = untied_prefix(greedy["choices"][0])
            if n >= 6:
                break
        else:
            return False
        sampled = [t.chat(messages=messages, temperature=1.5, seed=s, max_tokens=12, **param) for s in (1, 2)]
        plain = [t.chat(messages=messages, temperature=1.5, seed=s, max_tokens=12) for s in (1, 2)]
        if None in sampled or None in plain:
            return False
        want = greedy["choices"][0]["token_ids"][:n]
        # Takes effect: equals greedy with it, and without it sampling differs from greedy.
        return all(s["choices"][0]["token_ids"][:n] == want for s in sampled) and \
            any(p["choices"][0]["token_ids"][:n] != want for p in plain)
    return probe


TIE_FREE_CANDIDATES = ("Say something.", "Hello there", "Tell me a story.", "What is 2 + 2?", "Name a colour.",
                       "Count to five.", "Describe the sea.", "Why is the sky blue?")


def untied_prefix(choice: dict[str, Any]) -> int:
    """How many leading greedy tokens had a unique best logit (the first two log-probs differ)."""
    steps = (choice.get("logprobs") or {}).get("content") or []
    ids = choice["token_ids"]
    if len(steps) != len(ids):  # log-probs that do not line up with the ids: trust the whole run
        return len(ids)
    for i, step in enumerate(steps):
        top = [c["logprob"] for c in step["top_logprobs"]]
        if len(top) > 1 and top[0] == top[1]:
            return i
    return len(ids)


def logit_bias(t: Target) -> bool:
    r = t.chat(logit_bias={str(TOKEN_X): 100}, temperature=1.0, seed=3)
    return r is not None and set(free_ids(r["choices"][0])) == {TOKEN_X}


def allowed_token_ids(t: Target) -> bool:
    allowed = {TOKEN_X, TOKEN_X + 1, TOKEN_X + 2}
    r = t.chat(allowed_token_ids=sorted(allowed), temperature=1.0, seed=3)
    return r is not None and set(free_ids(r["choices"][0])) <= allowed


def min_tokens(t: Target) -> bool:
    eos = {str(EOS_ID): 100}  # EOS would otherwise come at once
    with_min = t.chat(logit_bias=eos, min_tokens=6, max_tokens=12, n=4, seed=1)
    without = t.chat(logit_bias=eos, max_tokens=12, seed=1)
    if with_min is None or without is None:
        return False
    # min_tokens counts every generated token, forced ones included (vLLM's rule)
    return all(len(c["token_ids"]) >= 6 for c in with_min["choices"]) and len(without["choices"][0]["token_ids"]) < 6


def ignore_eos(t: Target) -> bool:
    r = t.chat(logit_bias={str(EOS_ID): 100}, ignore_eos=True, max_tokens=10)
    return r is not None and r["usage"]["completion_tokens"] == 10


def stop_token_ids(t: Target) -> bool:
    r = t.chat(logit_bias={str(TOKEN_X): 100}, stop_token_ids=[TOKEN_X], max_tokens=10)
    return r is not None and free_ids(r["choices"][0]) == [TOKEN_X] and r["choices"][0]["finish_reason"] == "stop"


def penalty(param: dict[str, Any]) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        base = t.chat(temperature=0, max_tokens=40)
        pen = t.chat(temperature=0, max_tokens=40, **param)
        return base is not None and pen is not None and free_ids(base["choices"][0]) != free_ids(pen["choices"][0])
    return probe


def logprobs(t: Target) -> bool:
    r = t.chat(logprobs=True, top_logprobs=3, max_tokens=6)
    items = (r or {}).get("choices", [{}])[0].get("logprobs") or {}
    content = items.get("content") or []
    return bool(content) and all(len(c.get("top_logprobs") or []) == 3 for c in content)


def stream_logprobs(t: Target) -> bool:
    body = {"model": t.model, "messages": USER, "max_tokens": 6, "stream": True, "logprobs": True,
            "top_logprobs": 2, **(t.budget or {})}
    headers = {"Authorization": f"Bearer {t.api_key}"} if t.api_key else {}
    seen = 0
    with httpx.stream("POST", f"{t.base}/v1/chat/completions", json=body, headers=headers, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for c in json.loads(line[6:]).get("choices", []):
                    seen += len((c.get("logprobs") or {}).get("content") or [])
    return seen > 0


def full_text(resp: dict[str, Any] | None) -> str | None:
    if resp is None:
        return None
    msg = resp["choices"][0]["message"]
    return (msg.get("reasoning") or "") + (msg.get("content") or "")


def include_stop_str(t: Target) -> bool:
    text = full_text(t.chat(temperature=0, max_tokens=30)) or ""
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    if len(stop) < 2:
        return False
    cut = full_text(t.chat(temperature=0, max_tokens=30, stop=[stop]))
    kept = full_text(t.chat(temperature=0, max_tokens=30, stop=[stop], include_stop_str_in_output=True))
    return cut is not None and kept is not None and kept.endswith(stop) and not cut.endswith(stop)


# ---- structured outputs and tools -------------------------------------------------------------
def json_schema(t: Target) -> bool:
    fmt = {"type": "json_schema", "json_schema": {"name": "yn", "schema": YES_NO_SCHEMA}}
    r = t.chat(response_format=fmt, max_tokens=48, temperature=1.0, seed=5)
    try:
        return isinstance(json.loads(content_of(r) or "")["ok"], bool)
    except (ValueError, KeyError, TypeError):
        return False


def structured_choice(t: Target) -> bool:
    r = t.chat(structured_outputs={"choice": ["alpha", "beta"]}, max_tokens=48, temperature=1.0, seed=5)
    return content_of(r) in ("alpha", "beta")


def tool_required(t: Target) -> bool:
    r = t.chat(tools=[WEATHER_TOOL], tool_choice="required", max_tokens=200, temperature=1.0, seed=5)
    calls = ((r or {}).get("choices", [{}])[0].get("message") or {}).get("tool_calls") or []
    try:  # vLLM's grammar for GLM-4.5 tool calls lets the arguments be `{}`: the call itself is the effect
        return bool(calls) and calls[0]["function"]["name"] == "get_weather" and \
            isinstance(json.loads(calls[0]["function"]["arguments"]), dict)
    except (ValueError, KeyError):
        return False


def tool_named(t: Target) -> bool:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    r = t.chat(tools=[WEATHER_TOOL], tool_choice=choice, max_tokens=200, temperature=1.0, seed=5)
    calls = ((r or {}).get("choices", [{}])[0].get("message") or {}).get("tool_calls") or []
    return bool(calls) and calls[0]["function"]["name"] == "get_weather"


# ---- chat template switches ------------------------------------------------------------------
def prompt_len(r: dict[str, Any] | None) -> int | None:
    return None if r is None else r["usage"]["prompt_tokens"]


def add_generation_prompt(t: Target) -> bool:
    on, off = prompt_len(t.chat(max_tokens=2)), prompt_len(t.chat(max_tokens=2, add_generation_prompt=False))
    return on is not None and off is not None and off < on


def continue_final_message(t: Target) -> bool:
    msgs = [*USER, {"role": "assistant", "content": "Sure, here"}]
    cont = t.chat(messages=msgs, max_tokens=2, add_generation_prompt=False, continue_final_message=True)
    new = t.chat(messages=msgs, max_tokens=2)
    return cont is not None and new is not None and prompt_len(cont) < prompt_len(new)


def roles(role: str) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        if role == "tool":
            msgs = [*USER, {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
        else:
            msgs = [{"role": role, "content": "Be brief."}, *USER]
        return t.chat(messages=msgs, max_tokens=4) is not None
    return probe


def echo(t: Target) -> bool:
    msgs = [*USER, {"role": "assistant", "content": "Echoed prefix"}]
    r = t.chat(messages=msgs, max_tokens=4, echo=True, add_generation_prompt=False, continue_final_message=True)
    return (content_of(r) or "").startswith("Echoed prefix")


# ---- endpoints -------------------------------------------------------------------------------
def endpoint(method: str, path: str, body: Callable[[Target], dict[str, Any]] | None = None) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        headers = {"Authorization": f"Bearer {t.api_key}"} if t.api_key else {}
        if method == "GET":
            r = httpx.get(f"{t.base}{path}", headers=headers, timeout=60)
        else:
            r = t.post(path, body(t) if body else {})
        return r.status_code == 200
    return probe


PROBES: dict[str, Callable[[Target], bool]] = {
    "top_k=1 (greedy equivalence)": greedy_equivalent({"top_k": 1}),
    "min_p=1 (greedy equivalence)": greedy_equivalent({"min_p": 1.0}),
    "logit_bias": logit_bias,
    "allowed_token_ids": allowed_token_ids,
    "min_tokens": min_tokens,
    "ignore_eos": ignore_eos,
    "stop_token_ids": stop_token_ids,
    "repetition_penalty": penalty({"repetition_penalty": 2.0}),
    "presence_penalty": penalty({"presence_penalty": 2.0}),
    "frequency_penalty": penalty({"frequency_penalty": 2.0}),
    "logprobs + top_logprobs": logprobs,
    "logprobs in streams": stream_logprobs,
    "include_stop_str_in_output": include_stop_str,
    "response_format json_schema": json_schema,
    "structured_outputs choice": structured_choice,
    "tools + tool_choice=required": tool_required,
    "tools + named tool_choice": tool_named,
    "add_generation_prompt=false": add_generation_prompt,
    "continue_final_message": continue_final_message,
    "echo": echo,
    "role: tool": roles("tool"),
    "role: developer": roles("developer"),
    "POST /v1/completions": endpoint("POST", "/v1/completions",
                                     lambda t: {"model": t.model, "prompt": "Hello", "max_tokens": 4}),
    "POST /v1/responses": endpoint("POST", "/v1/responses",
                                   lambda t: {"model": t.model, "input": "Hello", "max_output_tokens": 8}),
    "POST /v1/messages": endpoint("POST", "/v1/messages", lambda t: {
        "model": t.model, "max_tokens": 8, "messages": USER}),
    "POST /tokenize": endpoint("POST", "/tokenize", lambda t: {"model": t.model, "prompt": "Hello"}),
    "POST /detokenize": endpoint("POST", "/detokenize", lambda t: {"model": t.model, "tokens": [72, 101]}),
    "GET /version": endpoint("GET", "/version"),
    "GET /v1/models": endpoint("GET", "/v1/models"),
    "GET /metrics": endpoint("GET", "/metrics"),
}


# ---- think budgets (thinkcap's rows; vLLM's server has no reasoning config here) -------------
THINK_OPEN, THINK_CLOSE, ANSWER_OPEN = 1018, 1019, 1020  # the tiny GLM-4.1V vocabulary
# The test server's --reasoning-effort-budgets: every level fits the tiny model's 1024-token context.
EFFORT_TABLE = {"none": 0, "minimal": 16, "low": 32, "medium": 48, "high": 64, "xhigh": 96}
# The model must not close or end by itself (EOS ids: <|endoftext|>, <|user|>, <|observation|>).
CLOSE_BIAS = {str(t): -100 for t in (THINK_CLOSE, EOS_ID, 1009, 1011)}


def closes_after(ids: list[int], n: int) -> bool:
    """n thinking tokens, then `</think><answer>`: counted after `<think>` when the output opens
    thinking itself, from output 0 when the prompt did (`thinkcap serve`'s template ends with it)."""
    start = 1 if ids[:1] == [THINK_OPEN] else 0
    return ids[start + n : start + n + 2] == [THINK_CLOSE, ANSWER_OPEN] and THINK_CLOSE not in ids[start : start + n]


def budget_field(field: str) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        r = t.chat(**{field: 5}, logit_bias=CLOSE_BIAS, max_tokens=40)
        return r is not None and closes_after(r["choices"][0]["token_ids"], 5) and bool(content_of(r))
    return probe


def reasoning_tokens(r: dict[str, Any] | None) -> int | None:
    return None if r is None else ((r.get("usage") or {}).get("completion_tokens_details") or {}).get("reasoning_tokens")


def effort(level: str, budget: int) -> Callable[[Target], bool]:
    def probe(t: Target) -> bool:
        r = t.chat(reasoning_effort=level, logit_bias=CLOSE_BIAS, max_tokens=budget + 40)
        return r is not None and reasoning_tokens(r) == budget and bool(content_of(r))
    return probe


def enable_thinking_false(t: Target) -> bool:
    on = t.chat(logit_bias=CLOSE_BIAS, max_tokens=30)
    off = t.chat(logit_bias=CLOSE_BIAS, max_tokens=30, chat_template_kwargs={"enable_thinking": False})
    return on is not None and off is not None and (reasoning_tokens(on) or 0) > 0 and reasoning_tokens(off) == 0


def min_think(t: Target) -> bool:
    stop_now = {str(THINK_CLOSE): 100, str(EOS_ID): 100}  # the model wants to stop at once
    r = t.chat(think_budget=20, min_think_tokens=12, logit_bias=stop_now, max_tokens=60)
    return r is not None and (reasoning_tokens(r) or 0) >= 12


def vllm_xargs_budget(t: Target) -> bool:
    r = t.chat(vllm_xargs={"think_budget": 5, "open_thinking": 1}, logit_bias=CLOSE_BIAS, max_tokens=40)
    return r is not None and closes_after(r["choices"][0]["token_ids"], 5)


def completion_budget(t: Target) -> bool:
    body = {"model": t.model, "prompt": "<|user|>\nHi<|assistant|>\n<think>", "max_tokens": 30,
            "think_budget": 5, "return_token_ids": True, "logit_bias": CLOSE_BIAS}
    r = t.post("/v1/completions", body)
    ids = r.json()["choices"][0].get("token_ids") or [] if r.status_code == 200 else []
    return ids[5:7] == [THINK_CLOSE, ANSWER_OPEN]


def responses_effort(t: Target) -> bool:
    body = {"model": t.model, "input": "Hi", "max_output_tokens": 120, "reasoning": {"effort": "minimal"},
            "logit_bias": CLOSE_BIAS}
    r = t.post("/v1/responses", body)
    if r.status_code != 200:
        return False
    out = r.json()
    used = ((out.get("usage") or {}).get("output_tokens_details") or {}).get("reasoning_tokens")
    return used == EFFORT_TABLE["minimal"] and any(item.get("type") == "reasoning" for item in out.get("output", []))


def messages_thinking(t: Target) -> bool:
    body = {"model": t.model, "max_tokens": 40, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 6}}
    r = t.post("/v1/messages", body)
    if r.status_code != 200:
        return False
    kinds = [block.get("type") for block in r.json().get("content", [])]
    return kinds[:1] == ["thinking"] and "text" in kinds


BUDGET_PROBES: dict[str, Callable[[Target], bool]] = {
    "think_budget (exact close position)": budget_field("think_budget"),
    "thinking_token_budget (vLLM's name)": budget_field("thinking_token_budget"),
    **{f"reasoning_effort={lvl}": effort(lvl, b) for lvl, b in EFFORT_TABLE.items()},
    "chat_template_kwargs.enable_thinking=false": enable_thinking_false,
    "min_think_tokens": min_think,
    "vllm_xargs think_budget": vllm_xargs_budget,
    "completions: budget once <think> is open": completion_budget,
    "responses: reasoning.effort": responses_effort,
    "messages: thinking.budget_tokens": messages_thinking,
}
