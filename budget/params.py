"""Per-request budget parameters: validation and the answer-reserve arithmetic.

Requests carry these as plain values (vLLM `SamplingParams.extra_args`, a JSON body, a YAML
config), so parsing and validation live here, once, for the server, the vLLM processor and training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from budget.fit import fit, tokens_needed

# Keys in `SamplingParams.extra_args` (and the JSON body). `thinking_token_budget` is vLLM's name.
THINK_BUDGET_KEY = "think_budget"
THINK_BUDGET_ALIASES = ("thinking_token_budget",)
MIN_THINK_KEY = "min_think_tokens"
CONTINUATION_KEY = "think_continuation_ids"
MESSAGE_KEY = "think_budget_message_ids"  # the wrap-up text (`think_budget_message`), tokenized
GRACE_KEY = "think_budget_grace"
ACTION_KEY = "think_budget_action"  # "force" (default) | "truncate"
ACTIONS = ("force", "truncate")
ANSWER_REQUIRED_KEY = "answer_required"  # default true: a thought is always followed by an answer
RESERVE_KEY = "answer_reserve"  # set: the budget shrinks so the answer keeps this many tokens of max_tokens
OPEN_KEY = "open_thinking"  # truthy: force `<think>` first when the prompt did not open thinking
# Truthy: the server's chat template ended this prompt with `<think>`. Not a budget parameter (the
# processor reads the prompt ids itself): a hint for the reasoning parser, which sees no prompt.
PROMPT_OPENED_KEY = "prompt_opened_thinking"


class BudgetError(ValueError):
    """A budget value a client sent is invalid; the message is safe to show to the client."""


def parse_think_budget(value: Any, name: str = THINK_BUDGET_KEY) -> int | None:
    """int >= 0 → that budget; None or -1 → unlimited. Bools, floats and strings are rejected."""
    if value is None:
        return None
    # bool is an int subclass: `true` must not silently mean a budget of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BudgetError(f"{name} must be an integer >= 0, or null/-1 for unlimited; got {value!r}")
    if value == -1:
        return None
    if value < 0:
        raise BudgetError(f"{name} must be >= 0 (or -1/null for unlimited); got {value}")
    return value


def _parse_ids(value: Any, name: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise BudgetError(f"{name} must be a list of token ids; got {value!r}")
    if any(v < 0 for v in value):
        raise BudgetError(f"{name} must hold non-negative token ids; got {list(value)}")
    return tuple(value)


def _parse_flag(value: Any, name: str) -> bool:
    """true/false; also 1/0, which is what vLLM's `vllm_xargs` schema turns a JSON boolean into."""
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    raise BudgetError(f"{name} must be true or false; got {value!r}")


@dataclass(frozen=True)
class BudgetParams:
    """What one request asks of the budget mechanism.

    think_budget: most thinking tokens allowed (counted after `<think>`); None means unlimited.
    min_think_tokens: the closing tag and EOS are suppressed until this many thinking tokens.
    continuation_ids: forced when the model's top choice was to stop before the minimum ("Wait").
    message_ids: the budget message (wrap-up text), forced just before the closing sequence when
        the budget runs out; they count as thinking tokens, so a budget shorter than it skips it.
    grace: after the budget, thinking may go on for at most this many tokens and closes at the
        first natural boundary (see `budget.state`); 0 is the exact cut.
    action: "force" forces the closing sequence at the budget; "truncate" stops the response there
        (a stop token, no answer; message and grace do not apply).
    answer_required: an EOS inside the thought becomes the close tag, and the answer may not be
        empty (issue 19.2); False leaves both to the model.
    open_thinking: force `<think>` as the first token when the prompt did not open thinking, so
        a budget always applies (a server sets it for chat requests that ask for a budget).
    answer_reserve: None, or tokens the answer keeps inside max_tokens after a forced close;
        `resolve_params` turns it into a smaller budget once max_tokens and the prompt are known.
    """

    think_budget: int | None = None
    min_think_tokens: int = 0
    continuation_ids: tuple[int, ...] = ()
    message_ids: tuple[int, ...] = ()
    open_thinking: bool = False
    answer_reserve: int | None = None
    grace: int = 0
    action: str = "force"
    answer_required: bool = True

    def __post_init__(self) -> None:
        parse_think_budget(self.think_budget)
        if isinstance(self.min_think_tokens, bool) or not isinstance(self.min_think_tokens, int):
            raise BudgetError(f"{MIN_THINK_KEY} must be an integer >= 0; got {self.min_think_tokens!r}")
        if self.min_think_tokens < 0:
            raise BudgetError(f"{MIN_THINK_KEY} must be >= 0; got {self.min_think_tokens}")
        if self.think_budget is not None and self.min_think_tokens > self.think_budget:
            raise BudgetError(
                f"{MIN_THINK_KEY} ({self.min_think_tokens}) cannot exceed the think budget "
                f"({self.think_budget}); lower min_think_tokens or raise think_budget/max_tokens"
            )
        if self.answer_reserve is not None and (isinstance(self.answer_reserve, bool)
                                                or not isinstance(self.answer_reserve, int) or self.answer_reserve < 0):
            raise BudgetError(f"{RESERVE_KEY} must be an integer >= 0; got {self.answer_reserve!r}")
        if isinstance(self.grace, bool) or not isinstance(self.grace, int) or self.grace < 0:
            raise BudgetError(f"{GRACE_KEY} must be an integer >= 0; got {self.grace!r}")
        if self.action not in ACTIONS:
            raise BudgetError(f"{ACTION_KEY} must be one of {', '.join(map(repr, ACTIONS))}; got {self.action!r}")
        if not isinstance(self.answer_required, bool):
            raise BudgetError(f"{ANSWER_REQUIRED_KEY} must be true or false; got {self.answer_required!r}")

    @property
    def truncate(self) -> bool:
        return self.action == "truncate"

    @property
    def active(self) -> bool:
        """False when the request needs nothing from the processor (unlimited, no minimum)."""
        return self.think_budget is not None or self.min_think_tokens > 0 or self.answer_reserve is not None

    def to_extra_args(self) -> dict[str, Any]:
        """The inverse of `params_from_args`, for `SamplingParams(extra_args=...)`."""
        out: dict[str, Any] = {THINK_BUDGET_KEY: self.think_budget}
        if self.min_think_tokens:
            out[MIN_THINK_KEY] = self.min_think_tokens
        if self.continuation_ids:
            out[CONTINUATION_KEY] = list(self.continuation_ids)
        if self.message_ids:
            out[MESSAGE_KEY] = list(self.message_ids)
        if self.grace:
            out[GRACE_KEY] = self.grace
        if self.action != "force":
            out[ACTION_KEY] = self.action
        if not self.answer_required:
            out[ANSWER_REQUIRED_KEY] = False
        if self.open_thinking:
            out[OPEN_KEY] = 1
        if self.answer_reserve is not None:
            out[RESERVE_KEY] = self.answer_reserve
        return out


def params_from_args(args: Mapping[str, Any] | None) -> BudgetParams | None:
    """Read budget keys from a mapping (e.g. `extra_args`); None when the request asks for nothing."""
    if not args:
        return None
    present = [k for k in (THINK_BUDGET_KEY, *THINK_BUDGET_ALIASES) if k in args]
    if len(present) > 1 and len({repr(args[k]) for k in present}) > 1:
        raise BudgetError(f"conflicting budget values in {present}; send only {THINK_BUDGET_KEY}")
    keys = (MIN_THINK_KEY, CONTINUATION_KEY, MESSAGE_KEY, RESERVE_KEY, GRACE_KEY, ACTION_KEY)
    if not present and not any(k in args for k in keys):
        return None
    budget = parse_think_budget(args[present[0]], present[0]) if present else None
    min_think = args.get(MIN_THINK_KEY) or 0
    params = BudgetParams(
        think_budget=budget,
        min_think_tokens=min_think,
        continuation_ids=_parse_ids(args.get(CONTINUATION_KEY), CONTINUATION_KEY),
        message_ids=_parse_ids(args.get(MESSAGE_KEY), MESSAGE_KEY),
        open_thinking=bool(args.get(OPEN_KEY)),
        answer_reserve=args.get(RESERVE_KEY),
        grace=args.get(GRACE_KEY, 0),
        action=args.get(ACTION_KEY, "force"),
        answer_required=_parse_flag(args.get(ANSWER_REQUIRED_KEY, True), ANSWER_REQUIRED_KEY),
    )
    return params if params.active else None


def answer_room(max_tokens: int, closing_len: int, prefix_tokens: int, answer_reserve: int,
                think_budget: int | None = None) -> tuple[int, int] | None:
    """(room for thinking, answer reserve actually kept) inside max_tokens by the fit rule
    (`budget.fit`: the reserve shrinks first, to its floor, before an explicit budget does), or None
    when max_tokens cannot even hold the opening and closing tags. A request vLLM would accept is
    never refused for being short (its answer is just shorter)."""
    fitted = fit(think_budget, max_tokens, closing_len, answer_reserve, prefix_tokens)
    if fitted is None:
        return None
    return max_tokens - prefix_tokens - closing_len - fitted.answer_reserve, fitted.answer_reserve


def effective_budget(
    think_budget: int | None,
    max_tokens: int | None,
    closing_len: int,
    answer_reserve: int = 0,
    prefix_tokens: int = 0,
) -> int | None:
    """The budget the fit rule (`budget.fit`) leaves inside `max_tokens`; training's strict form:
    it raises when max_tokens cannot hold the closing sequence and the reserve's floor.

    `prefix_tokens` are generated before thinking starts (1 when the model writes `<think>` itself).
    An unlimited budget becomes finite whenever max_tokens is set: a response must never end with
    the thinking cut by max_tokens and no answer.
    """
    if max_tokens is None:
        return think_budget
    least = tokens_needed(0, closing_len, answer_reserve, prefix_tokens)
    if max_tokens < least:
        raise BudgetError(
            f"max_tokens={max_tokens} leaves no room for an answer: the closing sequence needs "
            f"{closing_len} tokens and the answer at least {least - closing_len - prefix_tokens}; raise "
            f"max_tokens to at least {least} or lower the answer reserve"
        )
    fitted = fit(think_budget, max_tokens, closing_len, answer_reserve, prefix_tokens)
    assert fitted is not None  # max_tokens >= least
    return fitted.think_budget
