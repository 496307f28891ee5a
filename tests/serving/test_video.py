"""thinkcap.video: one decord decoder for serving and training, the sampling rule as a parameter,
limits from the header, corrupt files refused; and vLLM decoding GLM-4.1V videos through it."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import APIError
from serving.media import check_video
from serving.settings import MediaLimits
from tests.serving.test_media import mp4_bytes
from thinkcap.video import VideoError, all_frames, at_fps, ends, probe, read_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return mp4_bytes(tmp_path_factory.mktemp("clip"), seconds=4, fps=10)  # 40 frames, brightness 8*i


def test_decord_is_the_decoder_here():
    import decord  # the x86-64 wheel from PyPI; thinkcap.video falls back to OpenCV only without it

    assert decord.__version__ >= "0.6.0"


def test_all_frames_from_bytes_and_path(clip, tmp_path):
    frames, info, idx = read_video(clip)
    assert frames.shape == (40, 24, 32, 3) and frames.dtype == np.uint8 and idx == list(range(40))
    assert (info.total_frames, info.fps, info.width, info.height, info.duration) == (40, 10.0, 32, 24, 4.0)
    brightness = frames.mean(axis=(1, 2, 3))
    assert np.all(np.diff(brightness[:30]) > 0)  # frame i was written with brightness 8*i (mp4v is lossy)
    path = tmp_path / "c.mp4"
    path.write_bytes(clip)
    assert np.array_equal(read_video(path)[0], frames)


def test_sampling_rules_by_timestamps(clip):
    info = probe(clip)
    assert np.allclose(info.timestamps, np.arange(40) / 10)
    assert at_fps(2)(info) == [0, 5, 10, 15, 20, 25, 30, 35]
    assert at_fps(1, max_frames=2)(info) == [0, 20]
    assert ends(info) == [0, 39] and all_frames(info) == list(range(40))
    frames, _, idx = read_video(clip, at_fps(2))
    assert idx == [0, 5, 10, 15, 20, 25, 30, 35] and np.array_equal(frames, read_video(clip)[0][idx])


def test_limits_and_corrupt_files(clip):
    with pytest.raises(VideoError, match="lasts 4.0 s"):
        read_video(clip, ends, max_duration_s=3)
    with pytest.raises(VideoError, match="32x24; the limit is 100"):
        read_video(clip, ends, max_pixels=100)
    for bad in (b"", b"\x00" * 1000, clip[: len(clip) // 2], clip[:-200], b"\x89PNG\r\n\x1a\n" + b"x" * 100):
        with pytest.raises(VideoError, match="could not"):
            read_video(bad, ends)
    with pytest.raises(APIError, match="could not open") as info:
        check_video(clip[:-200], MediaLimits(), "messages.0.content.1")
    assert info.value.param == "messages.0.content.1"


def test_vllm_decodes_glm4v_videos_through_decord(clip):
    """The registry maps GLM-4.1V's video processor to thinkcap's loader; indices and metadata are
    vLLM's own rule, so the frames equal what vLLM's OpenCV loader gives."""
    from vllm.multimodal.media.image import ImageMediaIO
    from vllm.multimodal.media.video import VideoMediaIO
    from vllm.multimodal.video import DynamicVideoBackend, get_video_loader_backend_for_processor

    from serving.video_backend import BACKEND_NAME, DecordGlm4vVideoBackend

    assert get_video_loader_backend_for_processor("Glm4vVideoProcessor") == BACKEND_NAME
    media_io = VideoMediaIO(ImageMediaIO(), video_backend=BACKEND_NAME)
    assert isinstance(media_io.video_loader, DecordGlm4vVideoBackend)
    ours, meta = media_io.load_bytes(clip).media
    theirs, their_meta = DynamicVideoBackend.load_bytes(clip)
    assert np.array_equal(ours, theirs)
    assert meta == {**their_meta, "video_backend": "decord_dynamic"}
    with pytest.raises(ValueError, match="could not"):
        DecordGlm4vVideoBackend.load_bytes(clip[:-200])
