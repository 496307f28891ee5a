"""The budget hint: what the model is told about its thinking budget. One function, used by the
server, rollouts, SFT and in-process evaluation, so a policy is served with the hint it was trained
with.

The hint is a line appended to the last user message (a text part when the content is a list), not
a system message: it stays next to the question in multi-turn chats, it works with chat templates
that have no system role, and the tiny model learns to read it in a few hundred SFT steps. The budget
in it is the one the engine enforces (after the answer reserve), so the model is never told about
tokens it cannot spend. A request without a budget still has one: what its max_tokens leaves after
the reserve (the fit rule caps every request so the answer fits), and that is what it is shown.

A policy folder records its hint in `thinkcap_policy.json` (`write_policy_hint`), which
`thinkcap serve POLICY_DIR` reads (`read_policy_hint`).
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

POLICY_FILE = "thinkcap_policy.json"  # beside the weights of an exported policy
DEFAULT_TEMPLATE = "Think for at most {budget} tokens."


class HintError(ValueError):
    """A hint template that cannot be used (the message says what to change)."""


@dataclass(frozen=True)
class BudgetHint:
    """`template` has exactly one `{budget}` field."""

    template: str

    def __post_init__(self) -> None:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:
            raise HintError(f"budget hint template {self.template!r}: {exc}") from None
        if fields != ["budget"]:
            raise HintError(f"budget hint template {self.template!r} must contain exactly one {{budget}} "
                            f"placeholder (found {fields or 'none'}); write '{{{{' for a literal brace")

    def text(self, budget: int) -> str:
        """The hint for an enforced budget."""
        return self.template.format(budget=budget)

    def apply(self, messages: list[dict[str, Any]], budget: int | None) -> list[dict[str, Any]]:
        """`messages` with the hint appended to the last user message (a new list; the input is not
        changed); unchanged when no budget is known (None)."""
        if budget is None:
            return messages
        return append_line(messages, self.text(budget))


def append_line(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """`messages` with `text` as a new line of the last user message (a text part when the content is
    a list): how a hint is shown, and how a client re-sends the very hint a response reports."""
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    if last is None:
        raise HintError("the budget hint goes into the last user message, and there is none")
    msg = dict(messages[last])
    content = msg.get("content")
    if isinstance(content, list):
        msg["content"] = [*content, {"type": "text", "text": text}]
    else:
        msg["content"] = f"{content or ''}\n{text}" if content else text
    return [*messages[:last], msg, *messages[last + 1:]]


def parse_hint(value: str | None) -> BudgetHint | None:
    """A `--budget-hint` value: "off"/"" → None, otherwise a template."""
    if value is None or value.strip().lower() in ("", "off", "none"):
        return None
    return BudgetHint(value)


def write_policy_hint(policy_dir: str | Path, hint: BudgetHint | None) -> None:
    """Record the hint a policy was trained with beside its weights."""
    data = {"budget_hint": None if hint is None else asdict(hint)}
    (Path(policy_dir) / POLICY_FILE).write_text(json.dumps(data, indent=2) + "\n")


def read_policy_hint(policy_dir: str | Path) -> tuple[bool, BudgetHint | None]:
    """(recorded, hint) from a policy folder; (False, None) when it records nothing."""
    path = Path(policy_dir) / POLICY_FILE
    if not path.is_file():
        return False, None
    data = json.loads(path.read_text()).get("budget_hint")
    if data is None:
        return True, None
    unknown = sorted(set(data) - {"template"})
    if unknown:  # e.g. "unlimited", written by an earlier thinkcap: say which file, not a TypeError
        raise HintError(f"{path}: budget_hint has fields this thinkcap does not know: {unknown}; keep only "
                        "'template' (the one field a hint has)")
    return True, BudgetHint(**data)
