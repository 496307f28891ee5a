"""Media loading: URL kinds and their limits, image and video decoding."""

from __future__ import annotations

import asyncio
import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from serving.errors import APIError
from serving.media import MediaRef, check_image, check_video, gate_media
from serving.media_fetch import fetch_bytes, local_path
from serving.settings import MediaLimits


def mp4_bytes(tmp_path, seconds: float, fps: int = 10, size=(32, 24)) -> bytes:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(int(seconds * fps)):
        writer.write(np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8))  # brightness encodes the index
    writer.release()
    return path.read_bytes()


def fetch(url: str, limits: MediaLimits) -> bytes:
    return asyncio.run(fetch_bytes(url, limits, "p"))


def test_data_urls(tmp_path):
    limits = MediaLimits()
    assert fetch("data:text/plain;base64," + base64.b64encode(b"hello").decode(), limits) == b"hello"
    assert fetch("data:text/plain,a%20b", limits) == b"a b"
    with pytest.raises(APIError, match="larger than"):
        fetch("data:image/png;base64," + "A" * 200, MediaLimits(fetch_max_bytes=100))


def test_local_paths_stay_inside_the_allowed_folder(tmp_path):
    (tmp_path / "ok.bin").write_bytes(b"x")
    outside = tmp_path.parent / "secret.bin"
    outside.write_bytes(b"s")
    (tmp_path / "link.bin").symlink_to(outside)
    limits = MediaLimits(allowed_local_media_path=tmp_path)
    assert fetch(str(tmp_path / "ok.bin"), limits) == b"x"
    assert fetch(f"file://{tmp_path / 'ok.bin'}", limits) == b"x"
    assert fetch("ok.bin", limits) == b"x"  # relative to the allowed folder
    for bad in (str(outside), str(tmp_path / "link.bin"), str(tmp_path / ".." / "secret.bin")):
        with pytest.raises(APIError, match="outside"):
            local_path(bad, limits, "p")
    with pytest.raises(APIError, match="disabled"):
        local_path(str(tmp_path / "ok.bin"), MediaLimits(), "p")


def test_image_pixel_limit_and_mime():
    buf = io.BytesIO()
    Image.new("RGBA", (50, 40), (1, 2, 3, 4)).save(buf, "PNG")
    assert check_image(buf.getvalue(), MediaLimits()) == "image/png"
    with pytest.raises(APIError, match="limit is 1000"):
        check_image(buf.getvalue(), MediaLimits(image_max_pixels=1000))
    with pytest.raises(APIError, match="could not decode"):
        check_image(buf.getvalue()[:60], MediaLimits())  # a truncated PNG: header fine, data cut


def test_video_limits(tmp_path):
    data = mp4_bytes(tmp_path, seconds=4)
    assert check_video(data, MediaLimits()) == "video/mp4"
    with pytest.raises(APIError, match="lasts 4.0 s"):
        check_video(data, MediaLimits(video_max_duration_s=3))
    with pytest.raises(APIError, match="limit is 100 pixels"):
        check_video(data, MediaLimits(image_max_pixels=100))
    with pytest.raises(APIError, match="could not open"):
        check_video(b"\x00" * 1000, MediaLimits())


def test_gate_rewrites_urls_to_data_and_counts_first(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    (tmp_path / "a.jpg").write_bytes(buf.getvalue())
    limits = MediaLimits(allowed_local_media_path=tmp_path, max_images_per_request=1)
    part = {"url": "a.jpg"}
    asyncio.run(gate_media([MediaRef("image", part, "url", "messages.0.content.0")], limits))
    assert part["url"] == "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    two = [MediaRef("image", {"url": "nope"}, "url", "p") for _ in range(2)]
    with pytest.raises(APIError, match="2 images"):  # refused before anything is fetched
        asyncio.run(gate_media(two, limits))
