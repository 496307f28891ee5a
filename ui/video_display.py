"""Videos the browser cannot play, shown through a converted copy; the model gets the original.

An MP4 written by OpenCV (`mp4v`, MPEG-4 Part 2) or an AVI decodes fine on the server, but
Chromium's <video> cannot play it: the chat showed an empty, broken player. Such a video is
shown as a VP8/WebM copy (or, where OpenCV cannot write VP8, as a still of its first frame).
The copy's name says which original it stands for, so `ui.history` sends the original: Gradio
moves displayed files into its own cache, which keeps the name but not the folder.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import cv2

# Codecs Chromium plays inside MP4/WebM/Matroska (OpenCV's FOURCC spelling).
PLAYABLE = {"avc1", "h264", "H264", "vp08", "VP80", "vp09", "VP90", "av01", "AV01", "hev1"}
_MARK = ".display-"  # <stem>.display-<hash>.webm
_ORIGINALS: dict[str, Path] = {}  # display name → original file


def _display_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "thinkcap-display"
    folder.mkdir(exist_ok=True)
    return folder


def codec(path: Path) -> str:
    capture = cv2.VideoCapture(str(path))
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
    finally:
        capture.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ")


def playable(path: Path, mime: str) -> bool:
    """Whether Chromium can play it as is: a browser container and a codec it decodes."""
    if mime not in ("video/mp4", "video/webm", "video/x-matroska"):
        return False
    return codec(path) in PLAYABLE


def _convert(source: Path, target: Path) -> bool:
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 8.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"VP80"), fps, size)
    frames = 0
    try:
        while writer.isOpened():
            ok, frame = capture.read()
            if not ok:
                break
            writer.write(frame)
            frames += 1
    finally:
        writer.release()
        capture.release()
    return frames > 0 and target.exists() and target.stat().st_size > 0


def _poster(source: Path, target: Path) -> bool:
    capture = cv2.VideoCapture(str(source))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    return bool(ok) and cv2.imwrite(str(target), frame)


def display_copy(path: Path) -> tuple[Path, str] | None:
    """(a file the browser shows, what it is) for a video it cannot play; None if impossible."""
    digest = hashlib.sha1(str(path.resolve()).encode() + str(path.stat().st_mtime).encode())
    stem = f"{path.stem}{_MARK}{digest.hexdigest()[:12]}"
    for suffix, make, what in ((".webm", _convert, "a WebM copy"),
                               (".png", _poster, "its first frame")):
        target = _display_dir() / f"{stem}{suffix}"
        if target.exists() or make(path, target):
            _ORIGINALS[target.name] = path
            return target, what
    return None


def original(path: str | Path) -> Path:
    """The file the model should get for a displayed one (itself, unless it is a copy)."""
    return _ORIGINALS.get(Path(path).name, Path(path))
