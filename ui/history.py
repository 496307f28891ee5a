"""Chatbot history (Gradio's normalized messages) → OpenAI chat messages.

Only answers go back to the model: thinking blocks (messages with a `metadata.title`) and the
notes the demo appended are dropped, as GLM-4.1V's own chat template does with earlier
reasoning. Attachments are re-read and sent as data URLs, since the server need not share our disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ui.media import Media, data_url, sniff_media
from ui.render import answer_text
from ui.video_display import original

Message = Mapping[str, Any]


def media_part(media: Media) -> dict:
    key = "image_url" if media.kind == "image" else "video_url"
    return {"type": key, key: {"url": data_url(media)}}


def _normalize(item: Any) -> Mapping[str, Any]:
    """One content item in Gradio's normalized shape. Handlers receive that shape; the
    shorthand they return (a string, `{"path": ...}`) is accepted too."""
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if "path" in item:
        return {"type": "file", "file": item}
    return item


def _items(message: Message) -> list[Mapping[str, Any]]:
    content = message.get("content")
    items = content if isinstance(content, list) else [content] if content else []
    return [_normalize(item) for item in items]


def user_parts(message: Message) -> list[dict]:
    """OpenAI content parts of one user message: media first, then text, as GLM prompts are built."""
    media, texts = [], []
    for item in _items(message):
        if item.get("type") == "file":
            media.append(media_part(sniff_media(original(item["file"]["path"]))))
        elif item.get("type") == "text" and item.get("text", "").strip():
            texts.append({"type": "text", "text": item["text"]})
    return media + texts


def assistant_text(message: Message) -> str:
    if (message.get("metadata") or {}).get("title"):
        return ""  # a thinking block
    texts = [item.get("text", "") for item in _items(message) if item.get("type") == "text"]
    return answer_text("\n\n".join(texts))


def to_openai(history: Iterable[Message]) -> list[dict]:
    """Merge Gradio's consecutive same-role messages into one OpenAI message each.

    Raises `ui.media.MediaError` if an attachment can no longer be read or recognised.
    """
    merged: list[dict] = []
    for message in history:
        role = message.get("role")
        if role == "user":
            parts = user_parts(message)
        elif role == "assistant":
            text = assistant_text(message)
            parts = [{"type": "text", "text": text}] if text else []
        else:
            continue
        if not parts:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(parts)
        else:
            merged.append({"role": role, "content": parts})
    return [_flatten(m) for m in merged]


def _flatten(message: dict) -> dict:
    """Assistant content as a plain string: every chat template understands that form."""
    if message["role"] != "assistant":
        return message
    return {"role": "assistant", "content": "\n\n".join(p["text"] for p in message["content"])}


EARLIER = "Earlier answer"
_HEADLINE = re.compile(r'<div class="tc-stats"><b>(.*?)</b>', re.S)


def _title(message: Message) -> str:
    return (message.get("metadata") or {}).get("title") or ""


def keep_earlier(turn: list[Message]) -> list[dict]:
    """Retry keeps the answer it replaces: folded under its own title ("Earlier answer 1 · ⚡
    Answer forced after 8 thinking tokens"), so answers at several budgets stay side by side
    in the chat. A titled message is never sent to the model (`assistant_text`)."""
    kept = [dict(m) for m in turn if _title(m).startswith(EARLIER)]
    answers = [m for m in turn if m.get("role") == "assistant" and not _title(m)]
    body = "\n\n".join(item.get("text", "") for m in answers for item in _items(m)
                       if item.get("type") == "text").strip()
    if not body:
        return kept
    headline = _HEADLINE.search(body)
    title = f"{EARLIER} {len(kept) + 1}" + (f" · {headline.group(1)}" if headline else "")
    return [*kept, {"role": "assistant", "content": body,
                    "metadata": {"title": title, "status": "done"}}]
