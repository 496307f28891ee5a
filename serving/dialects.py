"""Each API dialect's budget fields → one `BudgetParams` in the request's `vllm_xargs`.

vLLM's own request models then parse the body as usual (every vLLM parameter keeps working) and
hand `vllm_xargs` to the think-budget logits processor as `SamplingParams.extra_args`.

| endpoint               | budget fields read here                                                    |
|------------------------|----------------------------------------------------------------------------|
| /v1/chat/completions   | think_budget, thinking_token_budget, reasoning_effort, min_think_tokens,   |
|                        | chat_template_kwargs.enable_thinking=false (→ 0)                            |
| /v1/completions        | think_budget, thinking_token_budget, min_think_tokens                      |
| /v1/responses          | think_budget, min_think_tokens, reasoning.effort                           |
| /v1/messages           | thinking.type=enabled + budget_tokens, thinking.type=disabled (→ 0)        |

Chat-style endpoints force `<think>` open (`open_thinking`) unless the client continues its own
assistant message; raw completions are budgeted once the prompt or the output opens `<think>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from budget import BudgetError, BudgetParams, ThinkProfile, ThinkState, params_from_args, parse_think_budget
from budget.params import ACTION_KEY, ANSWER_REQUIRED_KEY, GRACE_KEY, MIN_THINK_KEY, PROMPT_OPENED_KEY, THINK_BUDGET_ALIASES, THINK_BUDGET_KEY
from serving.errors import APIError
from serving.settings import ServerSettings

UNLIMITED_EFFORTS = ("max",)  # vLLM's extra effort level: no budget


@dataclass
class Prepared:
    """What the response side needs to know about a rewritten request."""

    kind: str  # "chat" | "completion" | "responses" | "messages"
    params: BudgetParams | None  # as sent to the engine (before max_tokens is applied)
    stream: bool = False
    max_tokens: int | None = None  # the client's, None = what the context leaves
    keep_special_tokens: bool = False  # the client sent skip_special_tokens=false
    scope: str = "request"  # think_budget_scope (serving.turns)
    turn_thinking_tokens: int = 0  # scope turn: thinking of this turn's earlier steps, off the budget
    asked_budget: int | None = None  # scope turn: the budget asked for (params hold what is left of it)
    hint_text: str | None = None  # the budget hint added to the prompt (serving.hinting), reported back

    @property
    def requested_budget(self) -> int | None:
        """The budget the client asked for (None: unlimited)."""
        if self.scope == "turn":
            return self.asked_budget
        return self.params.think_budget if self.params else None


def _pop_budget(body: dict[str, Any]) -> tuple[bool, int | None]:
    """(given, budget) from think_budget / thinking_token_budget, removed from the body so vLLM's
    built-in budget never acts twice."""
    present = [k for k in (THINK_BUDGET_KEY, *THINK_BUDGET_ALIASES) if k in body]
    values = {k: body.pop(k) for k in present}
    if len({repr(v) for v in values.values()}) > 1:
        raise APIError(f"conflicting budget values in {present}; send only {THINK_BUDGET_KEY}", param=THINK_BUDGET_KEY)
    if not present:
        return False, None
    try:
        return True, parse_think_budget(values[present[0]], present[0])
    except BudgetError as exc:
        raise APIError(str(exc), param=present[0]) from None


def _effort_budget(effort: Any, settings: ServerSettings, param: str) -> int | None:
    if effort in UNLIMITED_EFFORTS:
        return None
    table = settings.reasoning_effort_budgets
    if effort not in table:
        raise APIError(f"{param} {effort!r} is not one of {', '.join([*table, *UNLIMITED_EFFORTS])}", param=param)
    return table[effort]


def constrained(body: dict[str, Any]) -> bool:
    """Whether a grammar will constrain the answer (it then keeps the larger reserve)."""
    fmt = body.get("response_format")
    text_fmt = body.get("text", {}).get("format") if isinstance(body.get("text"), dict) else None
    tool_choice = body.get("tool_choice")
    return bool(
        (isinstance(fmt, dict) and fmt.get("type") not in (None, "text"))
        or (isinstance(text_fmt, dict) and text_fmt.get("type") not in (None, "text"))
        or body.get("structured_outputs")
        or tool_choice == "required" or isinstance(tool_choice, dict) and tool_choice.get("type") not in (None, "auto", "none")
    )


MESSAGE_FIELDS = ("think_budget_message", "thinking_budget_message")  # ours, llama.cpp's name
MESSAGE_MAX_CHARS = 2000


def _controls(body: dict[str, Any], settings: ServerSettings) -> tuple[dict[str, Any], str | None]:
    """The budget controls of issue 20 (request field, else the server's flag), removed from the
    body: (BudgetParams keywords, the budget message text, tokenized later by `encode_message`)."""
    grace = body.pop(GRACE_KEY, None)
    action = body.pop(ACTION_KEY, None)
    required = body.pop(ANSWER_REQUIRED_KEY, None)
    texts = {k: body.pop(k) for k in MESSAGE_FIELDS if k in body}
    if len({repr(v) for v in texts.values()}) > 1:
        raise APIError(f"conflicting values in {list(texts)}; send only {MESSAGE_FIELDS[0]}", param=MESSAGE_FIELDS[0])
    text = next(iter(texts.values())) if texts else settings.think_budget_message
    if text is not None and (not isinstance(text, str) or not text.strip() or len(text) > MESSAGE_MAX_CHARS):
        raise APIError(f"{MESSAGE_FIELDS[0]} must be non-empty text of at most {MESSAGE_MAX_CHARS} characters, "
                       f"or null; got {text!r:.80}", param=next(iter(texts), MESSAGE_FIELDS[0]))
    kwargs = {"grace": settings.think_budget_grace if grace is None else grace,
              "action": settings.think_budget_action if action is None else action,
              "answer_required": settings.answer_required if required is None else required}
    return kwargs, text


def encode_message(body: dict[str, Any], prepared: Prepared, encode: Callable[[str], list[int]],
                   profile: ThinkProfile) -> Prepared:
    """Tokenize the budget message (left in vllm_xargs as text by `_params`) with the model's
    tokenizer: its ids go to the engine and into the params the response is replayed with."""
    xargs = body.get("vllm_xargs") or {}
    text = xargs.pop(MESSAGE_FIELDS[0], None)
    if text is None or prepared.params is None:
        return prepared
    try:
        params = replace(prepared.params, message_ids=tuple(encode(text)))
        ThinkState(profile, params)  # refuses a message that spells the close tag or EOS
    except ValueError as exc:
        raise APIError(str(exc), param=MESSAGE_FIELDS[0]) from None
    xargs.update(params.to_extra_args())
    return replace(prepared, params=params)


def _params(body: dict[str, Any], budget: int | None, settings: ServerSettings, open_thinking: bool) -> BudgetParams:
    """Merge with anything the client put in vllm_xargs itself (same keys, same rules)."""
    xargs = body.get("vllm_xargs")
    if xargs is not None and not isinstance(xargs, dict):
        raise APIError("vllm_xargs must be an object", param="vllm_xargs")
    xargs = dict(xargs or {})
    min_think = body.pop(MIN_THINK_KEY, None)
    controls, message = _controls(body, settings)
    try:
        from_x = params_from_args(xargs) or BudgetParams()
        if budget is None and THINK_BUDGET_KEY in xargs:
            budget = from_x.think_budget
        params = BudgetParams(
            think_budget=budget,
            min_think_tokens=from_x.min_think_tokens if min_think is None else min_think,
            continuation_ids=from_x.continuation_ids, message_ids=from_x.message_ids,
            open_thinking=open_thinking,
            answer_reserve=settings.structured_answer_reserve if constrained(body) else settings.answer_reserve,
            **controls,
        )
    except BudgetError as exc:
        named = [k for k in (MIN_THINK_KEY, GRACE_KEY, ACTION_KEY, ANSWER_REQUIRED_KEY) if k in str(exc)]
        raise APIError(str(exc), param=named[0] if named else THINK_BUDGET_KEY) from None
    for key in (*THINK_BUDGET_ALIASES, MIN_THINK_KEY):
        xargs.pop(key, None)
    xargs.update(params.to_extra_args())
    if message is not None:
        xargs[MESSAGE_FIELDS[0]] = message  # tokenized by `encode_message` (the middleware has the tokenizer)
    if open_thinking and settings.prompt_opens_thinking and body.get("chat_template") is None:
        # The server's template put `<think>` at the end of this prompt: tell the reasoning parser,
        # which vLLM gives no prompt ids on its non-streaming paths (see vllm_adapter.reasoning_parser).
        xargs[PROMPT_OPENED_KEY] = 1
    xargs = {k: v for k, v in xargs.items() if v is not None}  # vLLM's schema has no null values
    body["vllm_xargs"] = xargs
    return params


def _check_n(body: dict[str, Any], settings: ServerSettings) -> None:
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > settings.max_n:
        raise APIError(f"n={n} is above this server's limit of {settings.max_n}", param="n")


def _leaves_thought_open(messages: Any) -> bool:
    """Whether the last message's text has a `<think>` with no `</think>` after it (the tags of
    every model with a think profile: GLM-4.1V's format)."""
    last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else {}
    content = last.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not isinstance(content, str):
        return False
    return content.rfind("<think>") > content.rfind("</think>")


# ---- dialects -------------------------------------------------------------------------------
def prepare_chat(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    _check_n(body, settings)
    given, budget = _pop_budget(body)
    effort = body.get("reasoning_effort")
    kwargs = body.get("chat_template_kwargs") if isinstance(body.get("chat_template_kwargs"), dict) else {}
    if not given:
        if effort is not None:
            budget = _effort_budget(effort, settings, "reasoning_effort")
        elif kwargs.get("enable_thinking") is False:
            budget = 0  # templates without the switch (GLM-4.1V) still get no thinking
        else:
            budget = settings.default_think_budget
    # A client continuing its own assistant text, or with no generation prompt, keeps its prefix.
    open_thinking = body.get("add_generation_prompt", True) is not False and not body.get("continue_final_message")
    params = _params(body, budget, settings, open_thinking)
    if body.get("continue_final_message"):
        # The prompt ends with the client's own assistant text: inside a thought only if that text
        # left one open. The non-streaming reasoning parser sees no prompt; tell it (the streaming
        # one reads the prompt ids), so both split the continuation the same way.
        body["vllm_xargs"][PROMPT_OPENED_KEY] = int(_leaves_thought_open(body.get("messages")))
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return Prepared("chat", params, bool(body.get("stream")), limit, body.get("skip_special_tokens") is False)


def prepare_completion(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    _check_n(body, settings)
    _, budget = _pop_budget(body)
    params = _params(body, budget, settings, open_thinking=False)
    return Prepared("completion", params, bool(body.get("stream")), body.get("max_tokens"),
                    keep_special_tokens=True)  # raw text: vLLM's own skip_special_tokens rule applies


def prepare_responses(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    given, budget = _pop_budget(body)
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if not given:
        budget = (_effort_budget(effort, settings, "reasoning.effort") if effort is not None
                  else settings.default_think_budget)
    params = _params(body, budget, settings, open_thinking=True)
    return Prepared("responses", params, bool(body.get("stream")), body.get("max_output_tokens"))


def prepare_messages(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    given, budget = _pop_budget(body)
    thinking = body.pop("thinking", None)  # mapped here; vLLM's own mapping needs a reasoning config
    if not given and isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            budget = 0
        elif thinking.get("type") == "enabled":
            value = thinking.get("budget_tokens")
            try:
                budget = parse_think_budget(value, "thinking.budget_tokens")
            except BudgetError as exc:
                raise APIError(str(exc), param="thinking.budget_tokens") from None
            if budget is None:
                raise APIError("thinking.budget_tokens is required when thinking.type is 'enabled'",
                               param="thinking.budget_tokens")
        else:
            raise APIError(f"thinking.type must be 'enabled' or 'disabled'; got {thinking.get('type')!r}",
                           param="thinking.type")
    elif not given:
        budget = settings.default_think_budget
    params = _params(body, budget, settings, open_thinking=True)
    return Prepared("messages", params, bool(body.get("stream")), body.get("max_tokens"))


def prepare_chat_batch(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    """vLLM's /v1/chat/completions/batch: chat fields, one conversation per choice. The budget is
    enforced per conversation; the response is vLLM's own (no `thinkcap` object: its choices have
    no prompt ids to replay against)."""
    return replace(prepare_chat(body, settings), kind="chat_batch")


def prepare_invocation(body: dict[str, Any], settings: ServerSettings) -> Prepared:
    """SageMaker's /invocations: vLLM tries the chat model first, then completions; so do we."""
    return prepare_chat(body, settings) if "messages" in body else prepare_completion(body, settings)


DIALECTS: dict[str, Callable[[dict[str, Any], ServerSettings], Prepared]] = {
    "/v1/chat/completions": prepare_chat,
    "/v1/completions": prepare_completion,
    "/v1/responses": prepare_responses,
    "/v1/messages": prepare_messages,
    "/v1/chat/completions/batch": prepare_chat_batch,
    "/invocations": prepare_invocation,
}
