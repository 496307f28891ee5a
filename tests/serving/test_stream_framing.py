"""The SSE rewriter keeps vLLM's framing (issue 19.7): every event vLLM sends is sent, those with
nothing to add byte for byte (a completion chunk with empty text included: before, chunks whose
text was empty were dropped), and only the events the tracker needs are parsed and re-serialised.
No engine: a stub tracker stands in for `serving.tracker.ChoiceTracker`."""

from __future__ import annotations

import asyncio
import json

from serving.middleware import _Rewriter


class StubTracker:
    def __init__(self) -> None:
        self.parsed: list[dict] = []

    def needs(self, event: bytes) -> bool:
        return b'"finish_reason":"' in event or b'"response.completed"' in event

    def fast(self, event: bytes) -> bytes:
        return event

    def chunk(self, obj: dict) -> None:
        self.parsed.append(obj)
        obj["thinkcap"] = {"num_thinking_tokens": 1}

    def response(self, obj: dict) -> None:
        obj["thinkcap"] = {}


def _chunk(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "token_ids": None}
    return b"data: " + json.dumps({"object": "text_completion", "choices": [choice]}, separators=(",", ":")).encode() + b"\n\n"


def _run(messages: list[bytes], ctype: bytes = b"text/event-stream") -> tuple[list[dict], StubTracker]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    tracker = StubTracker()
    rewriter = _Rewriter(send, tracker)  # type: ignore[arg-type]

    async def go() -> None:
        await rewriter({"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]})
        for i, body in enumerate(messages):
            await rewriter({"type": "http.response.body", "body": body, "more_body": i < len(messages) - 1})

    asyncio.run(go())
    return sent, tracker


def test_events_with_nothing_to_add_pass_byte_for_byte():
    chunks = [_chunk(" day"), _chunk(""), _chunk(""), _chunk("un")]
    sent, tracker = _run([*chunks, b"data: [DONE]\n\n"])
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert body == b"".join(chunks) + b"data: [DONE]\n\n"
    assert tracker.parsed == []  # nothing parsed


def test_the_final_chunk_is_rewritten_and_split_events_reassembled():
    final = _chunk("lop", "length")
    stream = _chunk("a") + _chunk("") + final + b"data: [DONE]\n\n"
    pieces = [stream[i:i + 7] for i in range(0, len(stream), 7)]  # events cut anywhere
    sent, tracker = _run(pieces)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    events = [e for e in body.split(b"\n\n") if e]
    assert len(events) == 4 and events[1] == _chunk("").rstrip(b"\n")
    assert json.loads(events[2][6:])["thinkcap"] == {"num_thinking_tokens": 1}
    assert len(tracker.parsed) == 1


def test_named_events_keep_their_name_line():
    event = b'event: response.completed\ndata: {"type":"response.completed","response":{}}\n\n'
    sent, _ = _run([b'event: response.created\ndata: {"type":"response.created"}\n\n', event])
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert body.startswith(b'event: response.created\ndata: {"type":"response.created"}\n\n')
    assert b'event: response.completed\ndata: {"type":"response.completed","response":{},"thinkcap"' in body


def test_a_thought_chunk_gains_reasoning_content_without_a_parse():
    """The hot path of a thought: `reasoning_content` (the older name) added in the bytes, exactly
    the string of `reasoning`, quotes, backslashes and non-ASCII included."""
    from serving.tracker import ChoiceTracker

    tracker = ChoiceTracker.__new__(ChoiceTracker)
    tracker.kind = "chat"
    for text in ["a b", 'q"uote \\ back', '\\"reasoning\\":\\"x', "ü\n\t"]:
        obj = {"choices": [{"index": 0, "delta": {"reasoning": text}, "finish_reason": None}]}
        event = b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        delta = json.loads(tracker.fast(event)[6:])["choices"][0]["delta"]
        assert delta == {"reasoning": text, "reasoning_content": text}
