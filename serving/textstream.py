"""Token ids → text, incrementally, and stop-string trimming for text that arrives in pieces.

Byte-level BPE splits multi-byte characters across tokens, so a delta is only released once its
decoding no longer ends in U+FFFD; only a short window of ids is re-decoded each step (the same
prefix/read-offset scheme of vLLM and TGI), so streaming stays linear in the output length.
"""

from __future__ import annotations

from typing import Any


def decode(tokenizer: Any, ids: list[int]) -> str:
    # skip_special_tokens: EOS/role tokens vanish; GLM's <|begin_of_box|>/<|end_of_box|> are added
    # but not special tokens, so they stay as literal text and the boxed answer stays findable.
    return tokenizer.decode(ids, skip_special_tokens=True) if ids else ""


class IncrementalDecoder:
    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def push(self, ids: list[int]) -> str:
        """Add ids; return the text that is now final."""
        self.ids.extend(ids)
        prefix = decode(self.tokenizer, self.ids[self.prefix_offset : self.read_offset])
        full = decode(self.tokenizer, self.ids[self.prefix_offset :])
        if len(full) <= len(prefix) or full.endswith("\ufffd"):
            return ""  # an incomplete character: wait for the next id
        # Next time, the ids just read become the context that merges with what follows.
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return full[len(prefix) :]

    def flush(self) -> str:
        """At the end: release whatever is left, even an incomplete character."""
        prefix = decode(self.tokenizer, self.ids[self.prefix_offset : self.read_offset])
        full = decode(self.tokenizer, self.ids[self.prefix_offset :])
        self.read_offset = len(self.ids)
        return full[len(prefix) :] if len(full) > len(prefix) else ""


class StopFilter:
    """Holds back the last `len(longest stop) - 1` characters so a stop string split across deltas
    is never shown; once a stop string appears, text from it on is dropped (OpenAI semantics)."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.pending = ""
        self.stopped = False

    def push(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        self.pending += text
        cut = _first_stop(self.pending, self.stops)
        if cut >= 0:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        keep = min(self.hold, len(self.pending))
        out, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


def _first_stop(text: str, stops: list[str]) -> int:
    """Index where the earliest stop string starts in `text`, or -1."""
    return min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)


def trim_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; (text, whether one was found)."""
    cut = _first_stop(text, stops)
    return (text[:cut], True) if cut >= 0 else (text, False)
