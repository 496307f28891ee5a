"""Example media drawn by code, so the demo is usable on first open without any download.

Files go to a versioned cache folder ($THINKCAP_HOME or ~/.cache/thinkcap) and are written
atomically, so two demos starting together never serve a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

# Bump when the drawings change, so an old cache is not reused.
EXAMPLES_VERSION = 1
VIDEO_SIZE = (192, 128)  # (width, height): small keeps the data URL and the vision tokens few
VIDEO_FRAMES, VIDEO_FPS = 24, 8


@dataclass(frozen=True)
class ExampleMedia:
    shapes: Path  # red circles and blue squares: a counting question
    shapes_more: Path  # the same scene with more circles: a two-image comparison
    video: Path  # a ball rolling left to right


def examples_dir() -> Path:
    home = os.environ.get("THINKCAP_HOME") or Path.home() / ".cache" / "thinkcap"
    return Path(home) / f"demo-examples-v{EXAMPLES_VERSION}"


def draw_shapes(circles: int, squares: int, size: int = 224) -> Image.Image:
    """A white canvas with `circles` red circles on the top row(s) and `squares` blue squares below."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    cell = size // 4
    for i in range(circles):
        x, y = (i % 4) * cell + cell // 2, (i // 4) * cell + cell // 2
        draw.ellipse((x - 20, y - 20, x + 20, y + 20), fill=(220, 40, 40))
    for i in range(squares):
        x, y = (i % 4) * cell + cell // 2, size - cell // 2 - (i // 4) * cell
        draw.rectangle((x - 18, y - 18, x + 18, y + 18), fill=(40, 90, 220))
    return image


def write_ball_video(path: Path) -> None:
    """A red ball crossing a grey floor from left to right."""
    width, height = VIDEO_SIZE
    # VP8/WebM plays inside the browser's <video>; OpenCV builds without libvpx fall back to
    # MPEG-4 ('mp4v'), which the server decodes fine but Chromium shows as a blank player.
    codec = "VP80" if path.suffix == ".webm" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), VIDEO_FPS, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot encode {codec} video")
    try:
        for i in range(VIDEO_FRAMES):
            frame = np.full((height, width, 3), 245, np.uint8)
            frame[height - 24:] = (150, 150, 150)
            x = 16 + i * (width - 32) // (VIDEO_FRAMES - 1)
            cv2.circle(frame, (x, height - 40), 16, (40, 40, 220), -1)  # BGR: red
            writer.write(frame)
    finally:
        writer.release()


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _ensure_video(folder: Path) -> Path:
    for name in ("ball.webm", "ball.mp4"):
        target = folder / name
        if target.exists():
            return target
        try:
            _write_atomic(target, write_ball_video)
            return target
        except OSError:
            continue
    raise OSError("OpenCV can encode neither VP8 nor MPEG-4 video")


def ensure_examples(folder: Path | None = None) -> ExampleMedia:
    """Create the example files once; later calls return the cached ones."""
    folder = folder or examples_dir()
    folder.mkdir(parents=True, exist_ok=True)
    images = {"shapes.png": (3, 2), "shapes_more.png": (5, 2)}
    for name, (circles, squares) in images.items():
        if not (folder / name).exists():
            drawing = draw_shapes(circles, squares)
            _write_atomic(folder / name, lambda p, d=drawing: d.save(p, format="PNG"))
    return ExampleMedia(folder / "shapes.png", folder / "shapes_more.png", _ensure_video(folder))
