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
from serving.media import decode_image, decode_video, sample_indices
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


def test_image_pixel_limit_and_modes():
    buf = io.BytesIO()
    Image.new("RGBA", (50, 40), (1, 2, 3, 4)).save(buf, "PNG")
    img = decode_image(buf.getvalue(), MediaLimits())
    assert img.mode == "RGB" and img.size == (50, 40)
    with pytest.raises(APIError, match="limit is 1000"):
        decode_image(buf.getvalue(), MediaLimits(image_max_pixels=1000))


def test_video_sampled_uniformly_with_real_timestamps(tmp_path):
    frames, meta = decode_video(mp4_bytes(tmp_path, seconds=3), MediaLimits(video_fps=2))
    assert frames.shape == (6, 24, 32, 3) and frames.dtype == np.uint8
    assert meta["fps"] == 10 and meta["total_num_frames"] == 30 and meta["duration"] == 3
    assert meta["frames_indices"] == [0, 6, 12, 17, 23, 29] and meta["do_sample_frames"] is False
    # The frame at each index is that frame (brightness = 8 * index, within codec error).
    assert [int(round(f.mean() / 8)) for f in frames] == meta["frames_indices"]


def test_video_limits(tmp_path):
    data = mp4_bytes(tmp_path, seconds=4)
    frames, meta = decode_video(data, MediaLimits(video_fps=10, video_max_frames=5))
    assert len(frames) == 6  # 5 capped, then padded to an even count for GLM's frame pairs
    assert meta["frames_indices"][-1] == meta["frames_indices"][-2]
    with pytest.raises(APIError, match="lasts 4.0 s"):
        decode_video(data, MediaLimits(video_max_duration_s=3))
    with pytest.raises(APIError, match="could not open"):
        decode_video(b"\x00" * 1000, MediaLimits())


@pytest.mark.parametrize(("total", "fps", "want"), [(30, 10.0, 6), (5, 10.0, 2), (1, 1.0, 2), (10_000, 30.0, 32)])
def test_sample_indices_are_even_sorted_and_in_range(total, fps, want):
    idx = sample_indices(total, fps, MediaLimits())
    assert len(idx) == want and len(idx) % 2 == 0
    assert idx == sorted(idx) and 0 <= idx[0] and idx[-1] <= total - 1
