"""One video decoder for serving and training: decord's `VideoReader`, with the frame-sampling rule
as a parameter (training takes every frame, the server samples by timestamps at an fps, vLLM's
GLM-4.1V loader its own rule), and limits checked from the container before any frame is decoded.

decord ships wheels for x86-64 only. Where it is not installed (ARM hosts such as GH200), the same
functions decode with OpenCV. OpenCV is kept for two things only: that fallback, and reading the
frame size from the container header (decord exposes no size without decoding a frame, and a
frame is what a pixel bomb makes expensive).
Every failure is a `VideoError` (a ValueError, which vLLM's media path reports as a 400).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """The video cannot be opened, decoded, or is over a limit."""


@dataclass(frozen=True)
class VideoInfo:
    total_frames: int
    fps: float
    width: int
    height: int
    timestamps: np.ndarray  # start time of each frame in seconds, [total_frames]

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps


SampleRule = Callable[[VideoInfo], list[int]]


def all_frames(info: VideoInfo) -> list[int]:
    return list(range(info.total_frames))


def ends(info: VideoInfo) -> list[int]:
    """First and last frame: enough to find a container that opens but is cut short."""
    return sorted({0, info.total_frames - 1})


def at_fps(fps: float, max_frames: int | None = None) -> SampleRule:
    """Frames at times 0, 1/fps, 2/fps, ... by the frames' own timestamps (variable frame rate
    included); spread evenly over the whole video when that would exceed `max_frames`."""
    if fps <= 0:
        raise ValueError(f"sampling fps must be > 0, got {fps}")

    def rule(info: VideoInfo) -> list[int]:
        n = max(1, math.floor(info.duration * fps))
        if max_frames is not None and n > max_frames:
            times = np.linspace(0, info.duration, max_frames, endpoint=False)
        else:
            times = np.arange(n) / fps
        idx = np.searchsorted(info.timestamps, times - 1e-6, side="left")
        return sorted({int(i) for i in np.minimum(idx, info.total_frames - 1)})

    return rule


def read_video(source: bytes | str | Path, sample: SampleRule = all_frames, *, max_duration_s: float | None = None,
               max_pixels: int | None = None) -> tuple[np.ndarray, VideoInfo, list[int]]:
    """Decode the frames `sample` picks: (frames [T, H, W, 3] uint8 RGB, info, their indices)."""
    reader = _open(source)
    info = reader.info()
    check_limits(info, max_duration_s, max_pixels)
    indices = sample(info)
    if not indices or min(indices) < 0 or max(indices) >= info.total_frames:
        raise VideoError(f"sampling picked frames {indices[:5]}… outside 0..{info.total_frames - 1}")
    return reader.frames(indices), info, indices


def probe(source: bytes | str | Path) -> VideoInfo:
    return _open(source).info()


def check_limits(info: VideoInfo, max_duration_s: float | None, max_pixels: int | None) -> None:
    if max_duration_s is not None and info.duration > max_duration_s:
        raise VideoError(f"video lasts {info.duration:.1f} s; the limit is {max_duration_s:g} s")
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise VideoError(f"video frames are {info.width}x{info.height}; the limit is {max_pixels} pixels")


def _open(source: bytes | str | Path) -> _DecordReader | _OpenCVReader:
    try:
        import decord  # noqa: F401
    except ImportError:
        return _OpenCVReader(source)
    return _DecordReader(source)


class _DecordReader:
    def __init__(self, source: bytes | str | Path):
        import decord

        self.decord = decord
        self.source = source
        try:  # decord copies a file-like object's bytes at once
            uri = io.BytesIO(source) if isinstance(source, bytes) else str(source)
            self.vr = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=1)
        except (RuntimeError, AssertionError, decord.DECORDError) as exc:
            raise VideoError(f"could not open the video (unsupported or corrupt container): {_first_line(exc)}") from None

    def info(self) -> VideoInfo:
        n, fps = len(self.vr), float(self.vr.get_avg_fps() or 0.0)
        if n <= 0 or not fps > 0:
            raise VideoError("the video reports no frames or no frame rate")
        width, height = _header_size(self.source)
        return VideoInfo(n, fps, width, height, np.asarray(self.vr.get_frame_timestamp(range(n)))[:, 0])

    def frames(self, indices: list[int]) -> np.ndarray:
        try:
            return self.vr.get_batch(indices).asnumpy()
        except (RuntimeError, self.decord.DECORDError) as exc:
            raise VideoError(f"could not decode frames of the video: {_first_line(exc)}") from None


def _header_size(source: bytes | str | Path) -> tuple[int, int]:
    """(width, height) from the container header, no frame decoded."""
    import cv2

    buffer = io.BytesIO(source) if isinstance(source, bytes) else None  # must outlive cap
    cap = cv2.VideoCapture(buffer, cv2.CAP_FFMPEG, []) if buffer else cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            raise VideoError("could not open the video (unsupported or corrupt container)")
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


class _OpenCVReader:
    """Fallback where decord has no wheel; OpenCV reads from a path or an in-memory buffer."""

    def __init__(self, source: bytes | str | Path):
        import cv2

        self.cv2 = cv2
        self.buffer = io.BytesIO(source) if isinstance(source, bytes) else None  # must outlive cap
        self.cap = cv2.VideoCapture(self.buffer, cv2.CAP_FFMPEG, []) if self.buffer else cv2.VideoCapture(str(source))
        if not self.cap.isOpened():
            raise VideoError("could not open the video (unsupported or corrupt container)")

    def info(self) -> VideoInfo:
        cv2, cap = self.cv2, self.cap
        n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if n <= 0 or not fps > 0:
            raise VideoError("the video reports no frames or no frame rate")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return VideoInfo(n, fps, w, h, np.arange(n) / fps)

    def frames(self, indices: list[int]) -> np.ndarray:
        cv2, out, wanted, i = self.cv2, [], set(indices), 0
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while len(out) < len(wanted):
            ok, frame = self.cap.read()
            if not ok:
                raise VideoError(f"could not decode frame {i} of the video")
            if i in wanted:
                out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
        return np.stack([out[sorted(wanted).index(j)] for j in indices])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__
