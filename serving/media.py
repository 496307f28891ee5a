"""The media gate in front of vLLM: every image/video a request names is fetched and checked here
with thinkcap's limits, then handed to vLLM as a `data:` URL, so vLLM's own fetcher never touches
a client's URL or local path.

Checks: media count, URL scheme and local-path rules and byte limits (`media_fetch`), image pixel
count from the header before decoding (decompression bombs), a full decode (corrupt files), and
for video (`thinkcap.video`, decord): container opens, frame size, duration, first and last frames decode. Decoding runs in a worker
thread: it is CPU work and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from serving.errors import APIError
from serving.media_fetch import check_sniffed, fetch_bytes, sniff_mime
from serving.settings import MediaLimits
from thinkcap.video import VideoError, ends, read_video


@dataclass
class MediaRef:
    """One media URL inside a request body: `holder[key]` is the URL string."""

    kind: str  # "image" | "video"
    holder: dict[str, Any]
    key: str
    param: str  # where it is, for error messages: messages.0.content.1


async def gate_media(refs: list[MediaRef], limits: MediaLimits) -> None:
    """Check every ref (counts first, before fetching anything) and rewrite it to a data URL."""
    n_img = sum(r.kind == "image" for r in refs)
    n_vid = len(refs) - n_img
    if n_img > limits.max_images_per_request:
        raise APIError(f"{n_img} images in one request; this server allows at most {limits.max_images_per_request}",
                       param="messages")
    if n_vid > limits.max_videos_per_request:
        raise APIError(f"{n_vid} videos in one request; this server allows at most {limits.max_videos_per_request}",
                       param="messages")
    for ref in refs:
        url = ref.holder.get(ref.key)
        if not isinstance(url, str) or not url:
            raise APIError(f"{ref.kind} URL must be a non-empty string", param=ref.param)
        data = await fetch_bytes(url, limits, ref.param)
        check_sniffed(data, ref.kind, ref.param)  # an HTML error page never reaches a decoder
        check = check_image if ref.kind == "image" else check_video
        mime = await asyncio.to_thread(check, data, limits, ref.param)
        ref.holder[ref.key] = f"data:{mime};base64,{base64.b64encode(data).decode()}"


def check_image(data: bytes, limits: MediaLimits, param: str = "image_url") -> str:
    """The image's MIME type, after checking its size from the header and decoding it once."""
    try:
        img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except Exception as exc:  # PIL raises several types for unreadable data
        raise APIError(f"could not read the image: {type(exc).__name__}: {exc}", param=param) from None
    w, h = img.size
    if w * h > limits.image_max_pixels:
        raise APIError(f"image is {w}x{h} = {w * h} pixels; the limit is {limits.image_max_pixels}", param=param)
    try:
        img.load()
    except Exception as exc:
        raise APIError(f"could not decode the image: {type(exc).__name__}: {exc}", param=param) from None
    return Image.MIME.get(img.format or "", "image/png")


def check_video(data: bytes, limits: MediaLimits, param: str = "video_url") -> str:
    """Open with thinkcap's video decoder (decord), check duration and frame size from the header,
    then decode the first and last frames (a container cut short fails there)."""
    try:
        read_video(data, ends, max_duration_s=limits.video_max_duration_s, max_pixels=limits.image_max_pixels)
    except VideoError as exc:
        raise APIError(str(exc), param=param) from None
    return sniff_mime(data) or "video/mp4"
