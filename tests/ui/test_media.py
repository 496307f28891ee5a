from __future__ import annotations

import base64
from pathlib import Path

import cv2
import pytest
from PIL import Image

from ui.examples import VIDEO_FRAMES, draw_shapes, ensure_examples, write_ball_video
from ui.media import Media, MediaError, check_attachments, data_url, sniff_media, video_mime


def test_images_are_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.mp4"  # a JPEG with a video's name
    draw_shapes(2, 1).save(path, format="JPEG")
    assert sniff_media(path) == Media(path, "image", "image/jpeg")


def test_example_video_is_a_video(media) -> None:
    found = sniff_media(media.video)
    assert found.kind == "video"
    assert found.mime in ("video/webm", "video/mp4")


def test_mp4v_video_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_ball_video(path)  # the .mp4 suffix selects OpenCV's 'mp4v' encoder
    assert sniff_media(path) == Media(path, "video", "video/mp4")


def test_text_file_is_rejected_with_its_name(text_file: Path) -> None:
    with pytest.raises(MediaError, match="notes.png is neither an image nor a video"):
        sniff_media(text_file)


def test_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="Cannot read gone.png"):
        sniff_media(tmp_path / "gone.png")


@pytest.mark.parametrize(("head", "mime"), [
    (b"\x00\x00\x00\x18ftypisom" + bytes(52), "video/mp4"),
    (b"\x00\x00\x00\x14ftypqt  " + bytes(52), "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm" + bytes(48), "video/webm"),
    (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x88matroska" + bytes(44), "video/x-matroska"),
    (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(48), "video/x-msvideo"),
    (b"\x89PNG\r\n\x1a\n" + bytes(56), None),
])
def test_video_signatures(head: bytes, mime: str | None) -> None:
    assert video_mime(head) == mime


def test_several_images_or_one_video(media) -> None:
    image, video = sniff_media(media.shapes), sniff_media(media.video)
    check_attachments([image, image, image])
    check_attachments([video])
    with pytest.raises(MediaError, match="not both"):
        check_attachments([image, video])
    with pytest.raises(MediaError, match="at most one video"):
        check_attachments([video, video])


def test_data_url_carries_the_exact_bytes(media) -> None:
    url = data_url(sniff_media(media.shapes))
    header, payload = url.split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(payload) == media.shapes.read_bytes()


def test_examples_are_created_once_and_decode(tmp_path: Path) -> None:
    first = ensure_examples(tmp_path)
    stamp = first.shapes.stat().st_mtime_ns
    again = ensure_examples(tmp_path)
    assert again == first and first.shapes.stat().st_mtime_ns == stamp  # cached, not redrawn
    with Image.open(first.shapes_more) as image:
        assert image.size == (224, 224)
    capture = cv2.VideoCapture(str(first.video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == VIDEO_FRAMES
    assert not list(tmp_path.glob(".tmp-*"))  # atomic writes leave no temp files behind
