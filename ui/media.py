"""Recognise uploads as image or video by their bytes, and encode them as data URLs.

Browsers and Gradio label files by extension, which users get wrong (a `.png` that is really a
JPEG, a `.txt` renamed `.mp4`). The server decodes what we send, so we look at the content: an
unknown file becomes a clear message in the page instead of a 400 from deep inside the decoder.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

MediaKind = Literal["image", "video"]

# Every upload travels base64-encoded inside the JSON request (+33%); past this the request is
# slow to build and likely beyond what the server accepts anyway.
MAX_MEDIA_BYTES = 32 * 1024 * 1024


class MediaError(ValueError):
    """An upload we cannot send; the message is meant for the page as is."""


@dataclass(frozen=True)
class Media:
    path: Path
    kind: MediaKind
    mime: str


def video_mime(head: bytes) -> str | None:
    """MIME type of a video container from its first bytes, or None if it is not one we know."""
    if head[4:8] == b"ftyp":  # ISO base media: mp4, m4v, mov, 3gp
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: webm or matroska, told apart by the DocType
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


def image_mime(path: Path) -> str | None:
    """MIME type if Pillow recognises the file as an image (header only: no full decode)."""
    try:
        with Image.open(path) as image:
            return Image.MIME.get(image.format or "")
    except (UnidentifiedImageError, OSError):
        return None


def sniff_media(path: str | Path) -> Media:
    """Classify one upload; raise MediaError with a user-facing reason when we cannot send it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise MediaError(f"Cannot read {path.name}: {exc.strerror or exc}.") from None
    if size > MAX_MEDIA_BYTES:
        raise MediaError(f"{path.name} is {size / 2**20:.0f} MiB; the demo sends at most "
                         f"{MAX_MEDIA_BYTES // 2**20} MiB per file.")
    if mime := video_mime(head):
        return Media(path, "video", mime)
    if mime := image_mime(path):
        return Media(path, "image", mime)
    raise MediaError(f"{path.name} is neither an image nor a video the demo can read.")


def check_attachments(media: list[Media]) -> None:
    """GLM-4.1V takes several images or one video per message, like the official demo."""
    videos = sum(m.kind == "video" for m in media)
    if videos > 1:
        raise MediaError("Attach at most one video per message.")
    if videos and len(media) > 1:
        raise MediaError("Attach either images or one video, not both.")


def data_url(media: Media) -> str:
    """Inline the file: the server may not share our filesystem, so paths would not do."""
    encoded = base64.b64encode(media.path.read_bytes()).decode("ascii")
    return f"data:{media.mime};base64,{encoded}"
