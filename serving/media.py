"""Decode request media into what vLLM's multimodal processors take.

Images → RGB `PIL.Image`. Videos → `(frames, metadata)`: an RGB uint8 array [T, H, W, 3] sampled
uniformly at `--video-fps` (at most `--video-max-frames`), and the metadata dict vLLM's GLM-4.1V
processor reads (`fps`, `frames_indices`, `duration`, ... with `do_sample_frames=False`) so the
model's prompt carries the frames' real timestamps rather than re-sampled guesses.
Decoding runs in a worker thread: it is CPU work and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from serving.errors import APIError
from serving.media_fetch import fetch_bytes
from serving.protocol import ImagePart, Message, VideoPart
from serving.settings import MediaLimits

Video = tuple[np.ndarray, dict[str, Any]]


@dataclass
class MediaInputs:
    images: list[Image.Image] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)

    def as_mm_data(self) -> dict[str, list] | None:
        data = {k: v for k, v in (("image", self.images), ("video", self.videos)) if v}
        return data or None


def media_parts(messages: list[Message]) -> list[tuple[str, ImagePart | VideoPart]]:
    """(param path, part) for every image/video part, in prompt order."""
    found = []
    for i, msg in enumerate(messages):
        if isinstance(msg.content, list):
            for j, part in enumerate(msg.content):
                if isinstance(part, (ImagePart, VideoPart)):
                    found.append((f"messages.{i}.content.{j}", part))
    return found


def check_counts(messages: list[Message], limits: MediaLimits) -> None:
    """Refuse too many media before fetching any of them."""
    parts = [p for _, p in media_parts(messages)]
    n_img = sum(isinstance(p, ImagePart) for p in parts)
    n_vid = len(parts) - n_img
    if n_img > limits.max_images_per_request:
        raise APIError(f"{n_img} images in one request; this server allows at most {limits.max_images_per_request}", param="messages")
    if n_vid > limits.max_videos_per_request:
        raise APIError(f"{n_vid} videos in one request; this server allows at most {limits.max_videos_per_request}", param="messages")


async def load_media(messages: list[Message], limits: MediaLimits) -> MediaInputs:
    """Fetch and decode every part; the counts are checked before anything is fetched."""
    check_counts(messages, limits)
    out = MediaInputs()
    for param, part in media_parts(messages):
        if isinstance(part, ImagePart):
            data = await fetch_bytes(part.image_url.url, limits, param)
            out.images.append(await asyncio.to_thread(decode_image, data, limits, param))
        else:
            data = await fetch_bytes(part.video_url.url, limits, param)
            out.videos.append(await asyncio.to_thread(decode_video, data, limits, param))
    return out


def decode_image(data: bytes, limits: MediaLimits, param: str = "image_url") -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except Exception as exc:  # PIL raises several types for unreadable data
        raise APIError(f"could not read the image: {type(exc).__name__}: {exc}", param=param) from None
    w, h = img.size
    if w * h > limits.image_max_pixels:
        raise APIError(f"image is {w}x{h} = {w * h} pixels; the limit is {limits.image_max_pixels}", param=param)
    try:
        return img.convert("RGB")  # decodes; also drops alpha/palette the processor cannot take
    except Exception as exc:
        raise APIError(f"could not decode the image: {type(exc).__name__}: {exc}", param=param) from None


def sample_indices(total: int, fps: float, limits: MediaLimits) -> list[int]:
    """Uniform frame indices at `limits.video_fps`, capped at `video_max_frames`; even count
    because GLM-4.1V's vision tower merges frames in pairs (a last lone frame is repeated)."""
    duration = total / fps
    want = min(limits.video_max_frames, total, max(1, math.floor(duration * limits.video_fps)))
    idx = np.linspace(0, total - 1, want).round().astype(int).tolist()
    idx = list(dict.fromkeys(idx))  # short clips: linspace may repeat an index
    if len(idx) % 2:
        idx.append(idx[-1])
    return idx


def decode_video(data: bytes, limits: MediaLimits, param: str = "video_url") -> Video:
    import cv2

    stream = io.BytesIO(data)  # must outlive cap: OpenCV reads it until release() (freed early → segfault)
    cap = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])
    try:
        if not cap.isOpened():
            raise APIError("could not open the video (unsupported or corrupt container)", param=param)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        if total <= 0 or fps <= 0:
            raise APIError("the video reports no frames or no frame rate", param=param)
        if total / fps > limits.video_max_duration_s:
            raise APIError(f"video lasts {total / fps:.1f} s; the limit is {limits.video_max_duration_s:g} s", param=param)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w * h > limits.image_max_pixels:
            raise APIError(f"video frames are {w}x{h}; the limit is {limits.image_max_pixels} pixels", param=param)
        wanted = sample_indices(total, fps, limits)
        frames = _read_frames(cap, wanted)
    finally:
        cap.release()
        stream.close()
    if not frames:
        raise APIError("no frame of the video could be decoded", param=param)
    got = sorted(frames)
    indices = [i if i in frames else max((g for g in got if g <= i), default=got[0]) for i in wanted]
    array = np.stack([frames[i] for i in indices])  # [T, H, W, 3]
    meta = {
        "fps": fps, "duration": total / fps, "total_num_frames": total,
        "frames_indices": indices, "video_backend": "opencv", "do_sample_frames": False,
    }
    return array, meta


def _read_frames(cap: Any, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode sequentially (seeking is unreliable in many containers), keeping wanted frames."""
    import cv2

    keep, frames, i = set(wanted), {}, 0
    last = max(wanted)
    while i <= last and cap.grab():
        if i in keep:
            ok, bgr = cap.retrieve()
            if ok:
                frames[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        i += 1
    return frames
