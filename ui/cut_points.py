"""One thought, cut at several budgets: the answer forced at each cut, through the chat API.

Why: sampled separately, two budgets' answers differ by chance as much as by budget. Here the
thought is generated once (at the largest budget) and every smaller budget reuses its first
`budget` tokens, so columns differ only by where the thought was cut.

How a cut is answered: the conversation plus an assistant message `<think>` + the cut thought,
sent with `continue_final_message: true`, `add_generation_prompt: false` and `think_budget: 0`.
The server sees thinking open in the prompt and forces its own closing sequence (`</think>
<answer>` for GLM-4.1V) at output 0, exactly as the engine forces it when a budget runs out.
Writing the closing sequence into the message instead does not work: GLM-4.1V's chat template
keeps only the text after `</think>` of an assistant message (it drops earlier turns'
reasoning), so the thought would vanish from the prompt.

The pure core (plan, cut, request fields) is `budget.cuts`, which `thinkcap eval --ladder` uses
too; `CutClient` is the demo's small HTTP part (/tokenize, /detokenize, the forced answer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from budget.cuts import CONTINUE, cut_messages
from ui.client import ChatClient, ServerError, Settings
from ui.session import StopSignal

def cut_settings(settings: Settings) -> Settings:
    """Budget 0: thinking is open in the prompt, so the server closes it at once. A cut is exact
    and always answered: no grace, no wrap-up message, no truncate (those shaped the shared
    thought the cut is taken from)."""
    return Settings(0, settings.max_tokens, settings.temperature, settings.system_prompt)


class CutClient:
    """The HTTP side: token ids of a thought, the text of its first N tokens, the answer at a cut."""

    def __init__(self, chat: ChatClient, timeout: float = 60.0):
        self.chat = chat
        # vLLM serves /tokenize and /detokenize at the root, beside /v1.
        self.root = chat.api_base.rstrip("/").removesuffix("/v1")
        self._http = httpx.Client(timeout=timeout,
                                  headers={"Authorization": f"Bearer {chat.api_key}"})

    def _post(self, route: str, body: dict[str, Any]) -> dict:
        try:
            response = self._http.post(f"{self.root}/{route}",
                                       json={"model": self.chat.model, **body})
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            raise ServerError(f"The server's /{route} failed ({exc}); cutting a thought needs "
                              f"vLLM's /tokenize and /detokenize.") from None

    def tokenize(self, text: str) -> list[int]:
        return self._post("tokenize", {"prompt": text, "add_special_tokens": False})["tokens"]

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._post("detokenize", {"tokens": list(ids)})["prompt"] if ids else ""

    def thought_ids(self, thought: str, streamed: Sequence[int] | None) -> list[int]:
        """The ids as streamed (exact); re-tokenizing the text is the fallback for servers
        that do not return them (it may count differently: byte-level pieces)."""
        return list(streamed) if streamed is not None else self.tokenize(thought)

    def answer_at_cut(self, messages: list[dict], cut_thought: str, settings: Settings,
                      signal: StopSignal | None = None, budget_hint: str | None = None) -> Iterator[dict]:
        """Stream the answer forced right after `cut_thought` (chunks as plain dicts); `budget_hint`:
        the hint the thought's response reported, put back so the cut keeps the thought's prompt."""
        yield from self.chat.stream(cut_messages(messages, cut_thought, budget_hint), cut_settings(settings),
                                    signal, extra=CONTINUE)
