"""Applies thinkcap's additions to one response of any dialect, streamed or not.

The ids come from the engine (`serving.capture`), not from the response, so vLLM's response keeps
its own fields and framing; thinkcap only adds:

| dialect     | `thinkcap` object                                   | the one reasoning count (from ids)        |
|-------------|-----------------------------------------------------|-------------------------------------------|
| chat        | `choices[i].thinkcap` + top-level asked/effective   | `usage.completion_tokens_details.reasoning_tokens` |
| completions | the same                                            | the same                                  |
| responses   | `thinkcap` on the response (`response.completed`/`.incomplete` when streaming) | `usage.output_tokens_details.reasoning_tokens` |
| messages    | `thinkcap` on the message (`message_delta` when streaming) | (Anthropic's usage has no such field) |

Chat also gets `reasoning_content` beside `reasoning`, answer tags and GLM markup out of the text.
A streamed event that needs none of this (`needs`) passes as bytes, unparsed.
"""

from __future__ import annotations

import re
from typing import Any

from serving.augment import Layer
from serving.capture import Capture
from serving.dialects import Prepared
from serving.metrics import observe
from vllm_adapter.reasoning_parser import strip_answer_tags

# `"reasoning":"..."` in vLLM's compact JSON; a quote inside a string value is escaped, so this
# cannot match inside text.
_REASONING = re.compile(rb'"reasoning":("[^"\\]*(?:\\.[^"\\]*)*")')
_TERMINAL = {"responses": (b'"response.completed"', b'"response.incomplete"'), "messages": (b'"message_delta"',)}


class ChoiceTracker:
    def __init__(self, layer: Layer, prepared: Prepared, capture: Capture):
        self.layer = layer
        self.prepared = prepared
        self.capture = capture
        self.kind = prepared.kind
        self.finished: dict[int, dict[str, Any]] = {}  # choice index → its thinkcap object
        self.observed: set[int] = set()  # choices already on /metrics (a terminal event may repeat)

    # ---- which events need work ---------------------------------------------------------------
    def needs(self, event: bytes) -> bool:
        if self.kind in _TERMINAL:
            return any(t in event for t in _TERMINAL[self.kind])
        if b'"finish_reason":"' in event or b'"usage":{' in event:
            return True
        return self.kind == "chat" and any(p in event for p in self.layer.markup_prefixes) \
            and self.layer.markup_re.search(event) is not None

    def fast(self, event: bytes) -> bytes:
        """An event `needs` passed over: a chat thought chunk only gains `reasoning_content` (the same
        string beside `reasoning`), added in the bytes: no parse on the hot path of a thought."""
        if self.kind != "chat" or b'"reasoning":"' not in event:
            return event
        found = _REASONING.search(event)
        if found is None:
            return event
        end = found.end()
        return event[:end] + b',"reasoning_content":' + found.group(1) + event[end:]

    # ---- the objects --------------------------------------------------------------------------
    def info(self, index: int) -> dict[str, Any]:
        if index not in self.finished:
            prompt_ids, ids, max_tokens = self.capture.choice(index)
            return self._turn(self.layer.choice_info(self.prepared, prompt_ids, ids, max_tokens))
        return self.finished[index]

    def _turn(self, info: dict[str, Any]) -> dict[str, Any]:
        """The budget scope and what is left of the budget asked for (serving.turns)."""
        asked, spent = self.prepared.requested_budget, self.prepared.turn_thinking_tokens
        info["think_budget_scope"] = self.prepared.scope
        info["turn_thinking_tokens"] = spent
        info["budget_left"] = None if asked is None else max(0, asked - spent - info["num_thinking_tokens"])
        info["budget_hint"] = self.prepared.hint_text  # what the model was told, for clients that continue it
        return info

    def request_info(self, choice_info: dict[str, Any]) -> dict[str, Any]:
        """Top level of chat/completions: the budget asked for and the one applied (after the reserve)."""
        return {"think_budget": self.prepared.requested_budget, "effective_think_budget": choice_info["think_budget"]}

    def _observe(self, index: int) -> None:
        if index not in self.observed:
            self.observed.add(index)
            observe(self.prepared.params, self.prepared.requested_budget, self.finished[index])

    def thinking_total(self) -> int:
        """Thinking tokens of every choice so far: what every usage block reports."""
        slots = self.capture.slots
        n = slots[0].n if slots else 1
        indexes = {i * n + j for i, slot in enumerate(slots) for j in slot.outputs}
        return sum(self.info(i)["num_thinking_tokens"] for i in indexes)

    # ---- entry points -------------------------------------------------------------------------
    def response(self, obj: dict[str, Any]) -> None:
        """A whole (non-streamed) response body."""
        if self.kind in ("responses", "messages"):
            self._single(obj)
            return
        for choice in obj.get("choices") or []:
            self._clean(choice.get("message"))
            self._finish(obj, choice)
        self._usage(obj.get("usage"))

    def chunk(self, obj: dict[str, Any]) -> None:
        """One streamed event's data."""
        if self.kind == "responses":
            if isinstance(obj.get("response"), dict):
                self._single(obj["response"])
            return
        if self.kind == "messages":
            self._single(obj)
            return
        for choice in obj.get("choices") or []:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("content"):  # after reasoning ends vLLM streams raw text: drop answer tags
                    delta["content"] = strip_answer_tags(delta["content"], *self.layer.answer_tags)
                self._clean(delta)
            if choice.get("finish_reason") is not None:
                self._finish(obj, choice)
        self._usage(obj.get("usage"))

    # ---- pieces -------------------------------------------------------------------------------
    def _finish(self, obj: dict[str, Any], choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        info = self.finished[index] = self.info(index)
        self._observe(index)
        choice["thinkcap"] = info
        obj["thinkcap"] = self.request_info(info)
        if info["close_reason"] == "truncated" and choice.get("finish_reason") == "stop":
            choice["finish_reason"] = "length"  # think_budget_action truncate: cut at the budget

    def _single(self, obj: dict[str, Any]) -> None:
        """Responses and Messages: one output, its object on the response itself."""
        obj["thinkcap"] = self.finished[0] = self.info(0)
        self._observe(0)
        if obj["thinkcap"]["close_reason"] == "truncated":  # think_budget_action truncate
            if self.kind == "messages":
                obj["stop_reason"] = "max_tokens"
            elif obj.get("status") == "completed":
                obj["status"], obj["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
        usage = obj.get("usage")
        if self.kind == "responses" and isinstance(usage, dict):
            usage["output_tokens_details"] = {**(usage.get("output_tokens_details") or {}),
                                              "reasoning_tokens": obj["thinkcap"]["num_thinking_tokens"]}

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            usage["completion_tokens_details"] = {**(usage.get("completion_tokens_details") or {}),
                                                  "reasoning_tokens": self.thinking_total()}

    def _clean(self, message: dict[str, Any] | None) -> None:
        """Special-token text out of `content`/`reasoning` (unless the client asked to keep it with
        skip_special_tokens=false), and `reasoning_content` beside `reasoning`."""
        if not isinstance(message, dict):
            return
        if not self.prepared.keep_special_tokens:
            for key in ("content", "reasoning"):
                if isinstance(message.get(key), str):
                    message[key] = self.layer.strip_special(message[key])
        if message.get("reasoning") is not None:
            message["reasoning_content"] = message["reasoning"]
