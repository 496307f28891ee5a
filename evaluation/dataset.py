"""Eval items: training records (tasks.records format) turned into OpenAI chat messages.

Loading goes through `tasks.records.load_records`, so a file that trains also evaluates, with the
same validation and the same relative media paths. Media travel as `data:` URLs, which every
OpenAI-compatible VLM server accepts and which need no shared filesystem with the server.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalItem:
    id: str
    domain: str
    answer: Any
    messages: list[dict[str, Any]]  # OpenAI chat messages, media inlined as data URLs


def data_url(path: Path, default_mime: str) -> str:
    mime = mimetypes.guess_type(path.name)[0] or default_mime
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _openai_content(content: Any, images: list[Path], videos: list[Path]) -> Any:
    """Replace the record's `{"type": "image"}` / `{"type": "video"}` placeholders, in order,
    by `image_url` / `video_url` parts."""
    if not isinstance(content, list):
        return content
    out = []
    for part in content:
        kind = part.get("type")
        if kind in ("image", "video") and not (images if kind == "image" else videos):
            raise ValueError(f"more {kind!r} parts than {kind} files")
        if kind == "image":
            out.append({"type": "image_url", "image_url": {"url": data_url(images.pop(0), "image/png")}})
        elif kind == "video":
            out.append({"type": "video_url", "video_url": {"url": data_url(videos.pop(0), "video/mp4")}})
        else:
            out.append(part)
    return out


def to_item(record: Any) -> EvalItem:
    """A `tasks.records.Record` as an eval item; refuses records whose media do not match."""
    images, videos = list(record.images), list(record.videos)
    for path in (*images, *videos):
        if not path.is_file():
            raise FileNotFoundError(f"record {record.id!r}: media file {path} does not exist")
    try:
        messages = [{**m, "content": _openai_content(m["content"], images, videos)} for m in record.messages]
    except ValueError as exc:
        raise ValueError(f"record {record.id!r}: {exc}") from None
    if images or videos:
        raise ValueError(f"record {record.id!r}: {len(images)} image(s) and {len(videos)} video(s) "
                         f"have no placeholder part in its messages")
    return EvalItem(id=record.id, domain=record.domain, answer=record.answer, messages=messages)


def load_items(path: str | Path, limit: int | None = None, domains: set[str] | None = None) -> list[EvalItem]:
    """Items of a training-format JSONL. `limit` keeps the first N (after the domain filter)."""
    from scoring.verifiers import DOMAINS
    from tasks.records import load_records

    records = load_records(path, domains=DOMAINS)
    if domains:
        unknown = domains - DOMAINS
        if unknown:
            raise ValueError(f"--domains: unknown {sorted(unknown)}; known: {sorted(DOMAINS)}")
        records = [r for r in records if r.domain in domains]
    records = records[:limit] if limit is not None else records
    if not records:
        raise ValueError(f"{path}: no records left to evaluate (check --domains / --limit)")
    return [to_item(r) for r in records]
